"""The bot's series: model calls, tokens and latency, decisions, fallbacks, the breaker.

Through the real task, client and SDK against the Gemini fake over loopback; the figures are
read from ``/metrics`` before and after.
"""

from __future__ import annotations

import pytest

from bot import ai
from bot.fake_gemini import ok_json, unavailable
from ispsupport.tests.observability import scrape

pytestmark = pytest.mark.django_db

TRIAGE = {
    "intent": "billing",
    "sentiment": "neutral",
    "sentiment_score": 0.0,
    "confidence": 0.93,
    "kb_entry_id": "segunda-via",
    "answer": None,
    "reason": "pede segunda via",
}


@pytest.fixture
def greeted(say, conversation, fake_gemini, django_capture_on_commit_callbacks):
    fake_gemini.queue(ok_json({**TRIAGE, "intent": "greeting", "kb_entry_id": None}))
    with django_capture_on_commit_callbacks(execute=True):
        say("oi")
    fake_gemini.reset()
    return conversation


def test_a_model_answer_counts_the_call_its_tokens_and_the_decision(
    say, greeted, fake_gemini, django_capture_on_commit_callbacks
):
    fake_gemini.queue(ok_json(TRIAGE, prompt_tokens=410, output_tokens=52))
    before = scrape()

    with django_capture_on_commit_callbacks(execute=True):
        say("quero o boleto desse mes")

    after = scrape()
    delta = lambda name, **labels: after.value(name, **labels) - before.value(name, **labels)  # noqa: E731
    assert delta("ispsupport_bot_model_requests_total", operation="triage", outcome="ok") == 1
    assert delta("ispsupport_bot_model_latency_seconds_count", operation="triage") == 1
    assert delta("ispsupport_bot_model_tokens_total", operation="triage", kind="prompt") == 410
    assert delta("ispsupport_bot_model_tokens_total", operation="triage", kind="output") == 52
    assert delta("ispsupport_bot_decisions_total", action="answered", engine="gemini") == 1
    assert delta("ispsupport_bot_decision_latency_seconds_count") == 1
    assert delta("ispsupport_messages_outbound_total", type="interactive", sender="bot") == 1


def test_an_open_breaker_shows_in_its_gauge_and_the_rules_fallback_is_counted(
    say, greeted, fake_gemini, settings, django_capture_on_commit_callbacks
):
    from ispsupport.celery import app

    settings.GEMINI_BREAKER_FAIL_MAX = 1
    # Let eager Celery run the task's retry inline, as a worker would run it later.
    settings.CELERY_TASK_EAGER_PROPAGATES = False
    app.conf.task_eager_propagates = False
    fake_gemini.queue(unavailable(), unavailable(), unavailable())
    before = scrape()
    assert before.value("ispsupport_circuit_breaker_state", breaker="gemini") == 0

    try:
        with django_capture_on_commit_callbacks(execute=True):
            say("quero o boleto")  # 503: the breaker opens, the message goes to a person
            from conversations.tests.factories import ConversationFactory, CustomerFactory

            other = ConversationFactory(customer=CustomerFactory())
            say("oi", conv=other)
            say("preciso da segunda via do boleto", conv=other)  # breaker open: the rules
    finally:
        app.conf.task_eager_propagates = True

    assert ai.breaker().state() == "open"
    after = scrape()
    delta = lambda name, **labels: after.value(name, **labels) - before.value(name, **labels)  # noqa: E731
    assert after.value("ispsupport_circuit_breaker_state", breaker="gemini") == 2
    assert delta("ispsupport_circuit_breaker_transitions_total", breaker="gemini", to="open") == 1
    assert (
        delta("ispsupport_bot_model_requests_total", operation="triage", outcome="server_error")
        == 1
    )
    # The retried first message and both of the other customer's: the rules decided.
    assert delta("ispsupport_bot_fallbacks_total", reason="breaker_open") == 3
    assert delta("ispsupport_bot_decisions_total", action="answered", engine="rules") >= 1


def test_a_hand_off_counts_the_escalation_with_its_reason(
    say, greeted, fake_gemini, django_capture_on_commit_callbacks
):
    from bot.models import BotDecision

    before = scrape()

    with django_capture_on_commit_callbacks(execute=True):
        say("quero falar com um atendente")

    reason = BotDecision.objects.filter(conversation=greeted).latest("pk").escalation_reason
    assert reason
    after = scrape()
    delta = lambda name, **labels: after.value(name, **labels) - before.value(name, **labels)  # noqa: E731
    assert delta("ispsupport_bot_escalations_total", reason=reason) == 1
    assert delta("ispsupport_conversations_escalated_total", reason=f"bot:{reason}") == 1
    assert after.value("ispsupport_conversations_open", state="waiting") == 1
