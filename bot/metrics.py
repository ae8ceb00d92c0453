"""Series of the bot: model calls (Gemini), decisions, escalations, fallbacks, the breaker.

Model calls are recorded by ``bot.client`` (the one chokepoint: every call, its latency and
tokens); decisions from the ``BotDecision`` row each decision writes (on commit); the Gemini
breaker's state is read on scrape (``ispsupport_circuit_breaker_state{breaker="gemini"}``). Labels: operations, outcomes,
actions, engines, reasons: never text.
"""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_save

from ispsupport.metrics import (
    FAST_BUCKETS,
    counter,
    histogram,
    label,
    on_commit,
    register_breaker,
)

OPERATIONS = ("triage", "transcribe", "router_photo")

MODEL_REQUESTS = counter(
    "ispsupport_bot_model_requests",
    "Gemini calls by operation (triage, transcribe, router_photo) and outcome (ok, blocked, "
    "empty, bad_output, or the error kind: rate_limited, server_error, timeout, connection…).",
    ["operation", "outcome"],
    initial=[(op, "ok") for op in OPERATIONS],
)
MODEL_SECONDS = histogram(
    "ispsupport_bot_model_latency_seconds",
    "Duration of Gemini calls by operation.",
    ["operation"],
    buckets=FAST_BUCKETS,
)
MODEL_TOKENS = counter(
    "ispsupport_bot_model_tokens",
    "Tokens Gemini reported by operation and kind (prompt, output: includes thinking).",
    ["operation", "kind"],
    initial=[(op, kind) for op in OPERATIONS for kind in ("prompt", "output")],
)
DECISIONS = counter(
    "ispsupport_bot_decisions",
    "Bot decisions by action (greeted, answered, clarified, escalated, closed, ignored) and "
    "engine (gemini, rules, menu, none).",
    ["action", "engine"],
)
DECISION_SECONDS = histogram(
    "ispsupport_bot_decision_latency_seconds",
    "Time the bot took to decide one message (model calls included).",
    buckets=FAST_BUCKETS,
)
ESCALATIONS = counter(
    "ispsupport_bot_escalations",
    "Bot decisions that handed the conversation to a person, by reason.",
    ["reason"],
)
FALLBACKS = counter(
    "ispsupport_bot_fallbacks",
    "Decisions taken by the rule-based fallback instead of the model, by reason "
    "(not_configured, breaker_open, quota, latency_budget, model_<error>…).",
    ["reason"],
    initial=[(r,) for r in ("breaker_open", "quota", "latency_budget")],
)


def model_call(
    operation: str,
    outcome: str,
    latency_ms: float,
    prompt_tokens: int | None = None,
    output_tokens: int | None = None,
) -> None:
    """One Gemini call finished (``bot.client``)."""
    operation = label(operation)
    MODEL_REQUESTS.labels(operation=operation, outcome=label(outcome)).inc()
    MODEL_SECONDS.labels(operation=operation).observe(max(0.0, latency_ms) / 1000.0)
    if prompt_tokens:
        MODEL_TOKENS.labels(operation=operation, kind="prompt").inc(prompt_tokens)
    if output_tokens:
        MODEL_TOKENS.labels(operation=operation, kind="output").inc(output_tokens)


def _on_decision(sender: Any, instance: Any, created: bool, **_kwargs: Any) -> None:
    if not created:
        return
    action = label(instance.action)
    engine = label(instance.engine)
    seconds = (instance.latency_ms or 0.0) / 1000.0
    escalation = label(instance.escalation_reason) if instance.escalated else ""
    fallback = label(instance.fallback_reason) if instance.fallback_reason else ""

    def record() -> None:
        DECISIONS.labels(action=action, engine=engine).inc()
        DECISION_SECONDS.observe(seconds)
        if escalation:
            ESCALATIONS.labels(reason=escalation).inc()
        if fallback:
            FALLBACKS.labels(reason=fallback).inc()

    on_commit(record)


def connect() -> None:
    from bot.models import BotDecision

    post_save.connect(_on_decision, sender=BotDecision, dispatch_uid="metrics.bot_decision")
    register_breaker("gemini")  # bot.ai.breaker(): its state on /metrics
