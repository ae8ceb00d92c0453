"""Evaluation harness (bot.evaluation.metrics) and the product targets on the held-out test set."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from bot.evaluation.metrics import (
    DATASET_DEV,
    DATASET_TEST,
    evaluate,
    format_report,
    load_dataset,
)
from bot.rules import INTENTS, classify

FREQUENT = ("no_connection", "slow_connection", "billing")


def test_metrics_on_a_hand_computed_example() -> None:
    rows = [
        {"text": "a", "intent": "billing"},
        {"text": "b", "intent": "billing"},
        {"text": "c", "intent": "human"},
        {"text": "d", "intent": "other"},
    ]
    predictions = {"a": "billing", "b": "human", "c": "human", "d": "human"}
    report = evaluate(lambda text: predictions[text], rows)
    assert report.total == 4
    assert report.correct == 2
    assert report.accuracy == pytest.approx(0.5)
    human = report.per_intent["human"]
    assert human.precision == pytest.approx(1 / 3)
    assert human.recall == pytest.approx(1.0)
    assert human.f1 == pytest.approx(0.5)
    assert human.support == 1
    billing = report.per_intent["billing"]
    assert (billing.precision, billing.recall, billing.support) == (1.0, 0.5, 2)
    assert report.per_intent["other"].f1 == 0.0
    assert report.confusion[("billing", "human")] == 1
    assert [index for index, _, _ in report.errors] == [1, 3]


def test_evaluate_accepts_classification_objects_and_empty_rows() -> None:
    report = evaluate(classify, [{"text": "quero cancelar", "intent": "cancellation"}])
    assert report.accuracy == 1.0
    empty = evaluate(classify, [])
    assert (empty.total, empty.accuracy, empty.per_intent) == (0, 0.0, {})


def test_format_report_lists_every_intent_and_the_accuracy() -> None:
    report = evaluate(classify, load_dataset(DATASET_DEV))
    text = format_report(report)
    for intent in INTENTS:
        assert intent in text
    assert "accuracy" in text and "macro F1" in text


def test_load_dataset_rejects_a_bad_row(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "oi", "intent": "greeting"}\n\n{"text": "x"}\n', encoding="utf-8")
    with pytest.raises(ValueError, match=":3:"):
        load_dataset(path)


@pytest.mark.parametrize("path", [DATASET_DEV, DATASET_TEST], ids=["dev", "test"])
def test_dataset_is_well_formed_and_covers_every_intent(path: Path) -> None:
    rows = load_dataset(path)
    assert len(rows) >= 200
    for row in rows:
        assert set(row) == {"text", "intent", "escalate"}
        assert row["intent"] in INTENTS
        assert isinstance(row["escalate"], bool)
        if row["intent"] in ("human", "cancellation"):
            assert row["escalate"]
    counts = Counter(row["intent"] for row in rows)
    assert set(counts) == set(INTENTS)
    assert min(counts.values()) >= 12
    for intent in FREQUENT:
        assert counts[intent] >= 25


def test_dev_and_test_share_no_sentences_beyond_bare_greetings() -> None:
    def texts(path: Path) -> set[str]:
        return {json.loads(line)["text"].lower() for line in path.open(encoding="utf-8")}

    shared = texts(DATASET_DEV) & texts(DATASET_TEST)
    assert all(len(text.split()) <= 2 for text in shared), shared


def test_test_set_meets_the_product_targets() -> None:
    report = evaluate(classify, load_dataset(DATASET_TEST))
    details = format_report(report)
    assert report.accuracy >= 0.85, details
    assert report.recall("human") >= 0.98, details
    assert report.recall("cancellation") >= 0.98, details
