"""Measure the bot on a labelled dataset: intent metrics and escalation correctness.

``manage.py evaluate_bot [--dataset test|dev|PATH] [--engine rules|gemini] [--errors]``

Each row is decided as a fresh turn of a conversation the bot already greeted (no earlier bot
answers), with the knowledge base and policy stored in this database: the predicted intent is
compared with ``intent`` and the policy's would-escalate with ``escalate``. ``--engine gemini``
calls the real model (needs ``GEMINI_API_KEY``; one request per distinct row, under the same
breaker and per-minute quota as the bot); rows the model could not take (error, open breaker,
quota) are decided as the task would and counted as "model failures", so keep the dataset
within ``GEMINI_REQUESTS_PER_MINUTE`` or raise it for the run. Writes nothing.
"""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from bot import ai, selectors
from bot.analysis import ModelBusy, analyse_text
from bot.evaluation.metrics import DATASET_DEV, DATASET_TEST, evaluate, format_report, load_dataset
from bot.policy import Context, decide


class Command(BaseCommand):
    help = "Avalia o robô num conjunto rotulado: métricas por intenção e acerto de encaminhamento."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--dataset", default="test", help="test, dev or a JSONL path")
        parser.add_argument("--engine", choices=["rules", "gemini"], default="rules")
        parser.add_argument(
            "--errors", action="store_true", help="list misclassified rows (row numbers only)"
        )

    def handle(self, *args, **options) -> None:
        name = options["dataset"]
        path = {"test": DATASET_TEST, "dev": DATASET_DEV}.get(name) or Path(name)
        try:
            rows = load_dataset(path)
        except (OSError, ValueError) as exc:
            raise CommandError(f"cannot read dataset {name}: {exc}") from exc
        if not rows:
            raise CommandError(f"dataset {name} is empty")
        engine = options["engine"]
        if engine == "gemini" and not ai.is_configured():
            raise CommandError("--engine gemini needs GEMINI_API_KEY")

        snapshot = selectors.policy_snapshot()
        decided: dict[str, tuple[str, bool, str]] = {}
        failures = 0

        def run(text: str) -> str:
            nonlocal failures
            if text not in decided:
                try:
                    analysis = analyse_text(text, snapshot=snapshot, use_model=engine == "gemini")
                except ModelBusy:
                    analysis = analyse_text(text, snapshot=snapshot, model_failed=True)
                if analysis.model_failed or analysis.fallback_reason:
                    failures += 1  # breaker open, quota, model error: the rules decided
                context = Context(
                    injection=analysis.injection,
                    contested=analysis.contested,
                    model_failed=analysis.model_failed,
                    model_no_answer=analysis.model_no_answer,
                )
                outcome = decide(snapshot, analysis.triage, context, analysis.normalized)
                decided[text] = (analysis.triage.intent, outcome.escalates, outcome.rule)
            return decided[text][0]

        report = evaluate(run, rows)
        write = self.stdout.write
        write(f"dataset: {path}  engine: {engine}  rows: {len(rows)}")
        write(format_report(report))

        labelled = [row for row in rows if "escalate" in row]
        if labelled:
            tp = fp = fn = tn = 0
            for row in labelled:
                predicted = decided[str(row["text"])][1]
                expected = bool(row["escalate"])
                tp += predicted and expected
                fp += predicted and not expected
                fn += expected and not predicted
                tn += not predicted and not expected
            total = tp + fp + fn + tn
            precision = tp / (tp + fp) if tp + fp else 0.0
            recall = tp / (tp + fn) if tp + fn else 0.0
            write("")
            write(
                f"escalation  accuracy {(tp + tn) / total:.3f}  precision {precision:.3f}  "
                f"recall {recall:.3f}  (tp {tp}, fp {fp}, fn {fn}, tn {tn})"
            )
        must = [i for i in ("human", "cancellation") if i in report.per_intent]
        if must:
            write(
                "must-reach-a-person recall  "
                + "  ".join(f"{i} {report.recall(i):.3f}" for i in must)
            )
        if engine == "gemini":
            write(f"model failures (decided without the model): {failures}")
        if options["errors"]:
            write("")
            for index, expected, predicted in report.errors:
                write(f"row {index + 1}: expected {expected}, got {predicted}")
            for number, row in enumerate(rows, start=1):
                if "escalate" in row and decided[str(row["text"])][1] != bool(row["escalate"]):
                    rule = decided[str(row["text"])][2]
                    write(f"row {number}: escalate expected {row['escalate']}, rule {rule}")
