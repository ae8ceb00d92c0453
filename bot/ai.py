"""Gemini behind the fleet-wide guards: circuit breaker, per-minute quota and a time budget.

Every model call of the bot goes through :func:`call`. It raises :class:`AIUnavailable` without
calling when the key is missing, the breaker is open or the project's per-minute quota is used
up, and :class:`AIFailed` when the call was made and failed (``retry_after_s`` set when the
failure is transient). Unusable output (blocked, malformed) is *not* a failure: the result comes
back with ``output``/``text`` None and the breaker counts it as a success, because the service
answered.

Shared state: the breaker lives in the Django cache (``ispsupport.breaker``) and the quota in
``ispsupport.ratelimit`` (Redis in production), so all workers agree.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import TypeVar

from django.conf import settings

from bot import client
from bot.client import GeminiConfig, GeminiError, GeminiPermanent, GeminiRetryable
from ispsupport import ratelimit
from ispsupport.breaker import CircuitBreaker

T = TypeVar("T")

# Permanent errors that say the service is unusable for everyone (bad key, retired model):
# they trip the breaker. A 400 is about one request and does not.
_BREAKER_PERMANENT_CODES = frozenset({401, 403, 404})


class AIUnavailable(Exception):
    """No call was made: ``reason`` is not_configured, breaker_open, quota or latency_budget."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class AIFailed(Exception):
    """The call was made and failed. ``retryable`` with the server's ``retry_after_s``."""

    def __init__(self, error: GeminiError) -> None:
        super().__init__(error.kind)
        self.kind = error.kind
        self.code = error.code
        self.retryable = isinstance(error, GeminiRetryable)
        self.retry_after_s = getattr(error, "retry_after_s", None)


def is_configured() -> bool:
    return bool(getattr(settings, "GEMINI_API_KEY", ""))


def model_name() -> str:
    return getattr(settings, "GEMINI_MODEL", "") or "gemini-3.5-flash-lite"


def breaker() -> CircuitBreaker:
    """The breaker shared by every Gemini call of every worker."""
    return CircuitBreaker(
        "gemini",
        fail_max=int(getattr(settings, "GEMINI_BREAKER_FAIL_MAX", 5)),
        reset_timeout_s=float(getattr(settings, "GEMINI_BREAKER_RESET_SECONDS", 60.0)),
    )


def config(*, remaining_s: float | None = None) -> GeminiConfig:
    """Settings' config, with the per-attempt timeout cut to what is left of the time budget.

    The cut is rounded down to whole seconds (at least 1) so that only a handful of distinct
    configs, and so of cached SDK clients, ever exist per process.
    """
    base = GeminiConfig.from_django_settings()
    if remaining_s is None:
        return base
    cut = max(1.0, float(math.floor(remaining_s)))
    return dataclasses.replace(base, timeout_s=min(base.timeout_s, cut))


def call(fn: Callable[[GeminiConfig], T], *, remaining_s: float | None = None) -> T:
    """Run one model call ``fn(config)`` under the breaker, the quota and the time budget."""
    if not is_configured():
        raise AIUnavailable("not_configured")
    if remaining_s is not None and remaining_s < 1.0:
        raise AIUnavailable("latency_budget")
    guard = breaker()
    if not guard.allow():
        raise AIUnavailable("breaker_open")
    rpm = int(getattr(settings, "GEMINI_REQUESTS_PER_MINUTE", 0) or 0)
    if rpm > 0:
        allowed, _wait = ratelimit.allow(f"gemini:rpm:{model_name()}", rpm, 60.0)
        if not allowed:
            raise AIUnavailable("quota")
    try:
        result = fn(config(remaining_s=remaining_s))
    except GeminiRetryable as exc:
        guard.record_failure()
        raise AIFailed(exc) from exc
    except GeminiPermanent as exc:
        if exc.code in _BREAKER_PERMANENT_CODES:
            guard.record_failure()
        raise AIFailed(exc) from exc
    guard.record_success()
    return result


def triage(*, system_instruction: str, turn_text: str, history, remaining_s=None):
    """:func:`bot.client.triage` under the guards; texts must already be masked."""
    return call(
        lambda cfg: client.triage(
            cfg, system_instruction=system_instruction, turn_text=turn_text, history=history
        ),
        remaining_s=remaining_s,
    )


def transcribe(*, data: bytes, mime_type: str, remaining_s=None):
    return call(
        lambda cfg: client.transcribe_audio(cfg, data=data, mime_type=mime_type),
        remaining_s=remaining_s,
    )


def read_photo(*, data: bytes, mime_type: str, remaining_s=None):
    return call(
        lambda cfg: client.read_router_photo(cfg, data=data, mime_type=mime_type),
        remaining_s=remaining_s,
    )
