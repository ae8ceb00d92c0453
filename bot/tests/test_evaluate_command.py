"""``manage.py evaluate_bot`` and the time budget of a decision."""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from bot.fake_gemini import ok_json
from bot.models import BotDecision
from bot.tasks import handle_inbound_message
from conversations.models import Message

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command("evaluate_bot", *args, stdout=out)
    return out.getvalue()


def test_prints_per_intent_scores_accuracy_and_escalation_correctness():
    output = run("--dataset", "test")

    for intent in ("billing", "cancellation", "human", "no_connection", "technical_visit"):
        assert intent in output
    assert "accuracy" in output and "macro F1" in output
    assert "escalation  accuracy" in output
    assert "must-reach-a-person recall  human 1.000  cancellation 1.000" in output


def test_a_path_dataset_and_the_error_listing(tmp_path):
    path = tmp_path / "mini.jsonl"
    rows = [
        {"text": "quero cancelar", "intent": "cancellation", "escalate": True},
        {"text": "segunda via do boleto", "intent": "billing", "escalate": False},
        {"text": "oi", "intent": "billing", "escalate": True},
    ]
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")

    output = run("--dataset", str(path), "--errors")

    assert "accuracy  0.667  (2/3)" in output
    assert "row 3: expected billing, got greeting" in output
    assert "row 3: escalate expected True" in output


def test_bad_input_is_a_command_error(tmp_path, settings):
    with pytest.raises(CommandError):
        run("--dataset", str(tmp_path / "missing.jsonl"))
    broken = tmp_path / "broken.jsonl"
    broken.write_text("{not json\n", encoding="utf-8")
    with pytest.raises(CommandError):
        run("--dataset", str(broken))
    settings.GEMINI_API_KEY = ""
    with pytest.raises(CommandError):
        run("--engine", "gemini")


def test_gemini_engine_runs_against_the_fake(tmp_path, fake_gemini):
    path = tmp_path / "mini.jsonl"
    rows = [
        {"text": "segunda via do boleto", "intent": "billing", "escalate": False},
        {"text": "quero falar com atendente", "intent": "human", "escalate": True},
    ]
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    fake_gemini.queue(
        ok_json(
            {
                "intent": "billing",
                "sentiment": "neutral",
                "sentiment_score": 0.0,
                "confidence": 0.9,
                "kb_entry_id": "segunda-via",
                "answer": None,
                "reason": "2a via",
            }
        )
    )

    output = run("--dataset", str(path), "--engine", "gemini")

    assert "accuracy  1.000  (2/2)" in output
    assert len(fake_gemini.requests) == 1  # "atendente" never waits for the model
    assert "model failures (decided without the model): 0" in output


def test_a_message_already_past_its_time_budget_is_decided_without_the_model(
    conversation, fake_gemini
):
    from conversations.services import message_record_inbound

    old = timezone.now() - timedelta(seconds=30)
    for wamid, text in (("wamid.OLD1", "oi"), ("wamid.OLD2", "preciso da segunda via")):
        message, _ = message_record_inbound(
            conversation=conversation, wamid=wamid, type="text", timestamp=old, text=text
        )
        handle_inbound_message.delay(message.pk)

    assert fake_gemini.requests == []
    decision = BotDecision.objects.get(message=Message.objects.get(wamid="wamid.OLD2"))
    assert (decision.engine, decision.fallback_reason, decision.action) == (
        "rules",
        "latency_budget",
        "answered",
    )
