"""Intent-classification metrics over a labelled JSONL dataset.

Pure Python, no Django: the ``evaluate_bot`` management command and the tests both call
:func:`load_dataset`, :func:`evaluate` and :func:`format_report`. The classifier is passed in, so
the same code measures the rule-based fallback and any LLM-backed classifier.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "DATASET_DEV",
    "DATASET_TEST",
    "IntentScores",
    "Report",
    "evaluate",
    "format_report",
    "load_dataset",
]

DATASET_DEV = Path(__file__).with_name("dataset_dev.jsonl")
DATASET_TEST = Path(__file__).with_name("dataset_test.jsonl")

_REQUIRED_KEYS = ("text", "intent")


@dataclass(frozen=True)
class IntentScores:
    """Precision, recall and F1 of one intent; ``support`` counts rows labelled with it."""

    intent: str
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class Report:
    """Outcome of :func:`evaluate`.

    ``per_intent`` covers every intent seen in the labels or the predictions, sorted by name.
    ``confusion`` maps (expected, predicted) to a count and only holds non-zero cells.
    ``errors`` lists (index, expected, predicted) for every wrong row, index into ``rows``.
    """

    total: int
    correct: int
    accuracy: float
    macro_f1: float
    per_intent: dict[str, IntentScores]
    confusion: dict[tuple[str, str], int] = field(default_factory=dict)
    errors: tuple[tuple[int, str, str], ...] = ()

    def recall(self, intent: str) -> float:
        """Recall of ``intent``; 0.0 when the intent has no support."""
        scores = self.per_intent.get(intent)
        return scores.recall if scores else 0.0


def load_dataset(path: str | Path) -> list[dict[str, Any]]:
    """Read a JSONL dataset: one object per non-blank line with at least ``text`` and ``intent``.

    Raises ``ValueError`` naming the line when a row is not valid JSON or lacks a required key,
    because a silently skipped row would make the figures look better than they are.
    """
    rows: list[dict[str, Any]] = []
    with Path(path).open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{number}: invalid JSON ({exc.msg})") from exc
            if not isinstance(row, dict) or any(key not in row for key in _REQUIRED_KEYS):
                raise ValueError(f"{path}:{number}: each row needs {', '.join(_REQUIRED_KEYS)}")
            rows.append(row)
    return rows


def _intent_of(prediction: object) -> str:
    # Accept both a Classification-like object and a bare intent string.
    intent = getattr(prediction, "intent", prediction)
    if not isinstance(intent, str):
        raise TypeError("classify_fn must return a str or an object with an 'intent' attribute")
    return intent


def _ratio(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator else 0.0


def evaluate(classify_fn: Callable[[str], object], rows: Iterable[Mapping[str, Any]]) -> Report:
    """Run ``classify_fn`` on every row's ``text`` and compare with its ``intent`` label.

    ``classify_fn`` may return a string or anything with an ``intent`` attribute (such as
    ``bot.rules.Classification``). An empty ``rows`` gives a report with zero totals.
    """
    expected_labels: list[str] = []
    predicted_labels: list[str] = []
    for row in rows:
        expected_labels.append(str(row["intent"]))
        predicted_labels.append(_intent_of(classify_fn(str(row["text"]))))

    confusion: Counter[tuple[str, str]] = Counter(
        zip(expected_labels, predicted_labels, strict=True)
    )
    support = Counter(expected_labels)
    predicted_count = Counter(predicted_labels)
    per_intent: dict[str, IntentScores] = {}
    for intent in sorted(set(expected_labels) | set(predicted_labels)):
        true_positive = confusion[(intent, intent)]
        precision = _ratio(true_positive, predicted_count[intent])
        recall = _ratio(true_positive, support[intent])
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_intent[intent] = IntentScores(intent, precision, recall, f1, support[intent])

    total = len(expected_labels)
    correct = sum(confusion[(intent, intent)] for intent in per_intent)
    supported = [scores.f1 for scores in per_intent.values() if scores.support]
    errors = tuple(
        (index, expected, predicted)
        for index, (expected, predicted) in enumerate(
            zip(expected_labels, predicted_labels, strict=True)
        )
        if expected != predicted
    )
    return Report(
        total=total,
        correct=correct,
        accuracy=_ratio(correct, total),
        macro_f1=sum(supported) / len(supported) if supported else 0.0,
        per_intent=per_intent,
        confusion=dict(confusion),
        errors=errors,
    )


def format_report(report: Report) -> str:
    """Render ``report`` as a fixed-width plain-text table followed by the overall figures."""
    width = max([len("intent"), *(len(name) for name in report.per_intent)])
    lines = [f"{'intent':<{width}}  precision  recall     f1  support"]
    lines.append("-" * len(lines[0]))
    for name, scores in report.per_intent.items():
        lines.append(
            f"{name:<{width}}  {scores.precision:9.3f}  {scores.recall:6.3f}  {scores.f1:5.3f}"
            f"  {scores.support:7d}"
        )
    lines.append("-" * len(lines[0]))
    lines.append(f"accuracy  {report.accuracy:.3f}  ({report.correct}/{report.total})")
    lines.append(f"macro F1  {report.macro_f1:.3f}")
    return "\n".join(lines)
