"""A circuit breaker whose state lives in the Django cache, so every worker process agrees.

With ``REDIS_URL`` the cache is Redis, shared by the whole fleet; on the embedded default it is
the process's local-memory cache (one process, so still consistent).

Contract:

* ``allow()`` before each call to the protected service. ``False`` means the circuit is open:
  do not call, use the fallback.
* After the call, ``record_success()`` or ``record_failure()``; only failures that say the
  *service* is unwell should count (5xx, timeouts, quota), not a bad request of ours.
* Closed → open after ``fail_max`` failures without a success in between (counted within
  ``window_s``, so a failure now and then over hours never trips it). Open → half-open after
  ``reset_timeout_s``: exactly one caller across all workers is let through as a trial (an
  atomic ``cache.add``); its success closes the circuit, its failure opens it again.

Keys are ``breaker:<name>:…`` and carry no personal data.
"""

from __future__ import annotations

import logging
import time
from typing import Literal

from django.core.cache import cache

from ispsupport.metrics import BREAKER_TRANSITIONS

logger = logging.getLogger(__name__)

State = Literal["closed", "open", "half_open"]


class CircuitBreaker:
    def __init__(
        self,
        name: str,
        *,
        fail_max: int,
        reset_timeout_s: float,
        window_s: float | None = None,
        trial_timeout_s: float = 30.0,
    ) -> None:
        if fail_max < 1:
            raise ValueError("fail_max must be at least 1")
        self.name = name
        self.fail_max = fail_max
        self.reset_timeout_s = reset_timeout_s
        self.window_s = window_s if window_s is not None else max(60.0, reset_timeout_s)
        # A trial whose caller died never reports: let another one try after this long.
        self.trial_timeout_s = trial_timeout_s
        self._failures_key = f"breaker:{name}:failures"
        self._open_key = f"breaker:{name}:open_until"
        self._trial_key = f"breaker:{name}:trial"

    # -- reading ---------------------------------------------------------------------------

    def state(self) -> State:
        open_until = cache.get(self._open_key)
        if open_until is None:
            return "closed"
        return "open" if time.time() < float(open_until) else "half_open"

    def failures(self) -> int:
        return int(cache.get(self._failures_key) or 0)

    def allow(self) -> bool:
        """May the caller try the service now? (Consumes the half-open trial when it is one.)"""
        open_until = cache.get(self._open_key)
        if open_until is None:
            return True
        if time.time() < float(open_until):
            return False
        return bool(cache.add(self._trial_key, 1, timeout=max(1, int(self.trial_timeout_s))))

    # -- reporting -------------------------------------------------------------------------

    def record_success(self) -> None:
        if cache.get(self._open_key) is not None:
            BREAKER_TRANSITIONS.labels(breaker=self.name, to="closed").inc()
            logger.info("circuit breaker closed", extra={"breaker": self.name})
        cache.delete_many([self._failures_key, self._open_key, self._trial_key])

    def record_failure(self) -> None:
        if cache.get(self._open_key) is not None:
            # A failed half-open trial (or a straggler that started before the circuit opened).
            self._open()
            return
        if self._count_failure() >= self.fail_max:
            self._open()

    def reset(self) -> None:
        """Close the circuit and forget failures (operators, tests)."""
        cache.delete_many([self._failures_key, self._open_key, self._trial_key])

    # -- internals -------------------------------------------------------------------------

    def _count_failure(self) -> int:
        timeout = max(1, int(self.window_s))
        for _attempt in range(3):
            cache.add(self._failures_key, 0, timeout=timeout)
            try:
                return int(cache.incr(self._failures_key))
            except ValueError:
                continue  # the key expired between add and incr: add it again
        return 1

    def _open(self) -> None:
        # The open marker outlives the reset timeout: past it, the circuit is half-open until a
        # trial reports; if nobody calls for a long time, it expires and the circuit is closed.
        keep = max(1, int(self.reset_timeout_s * 10 + 60))
        cache.set(self._open_key, time.time() + self.reset_timeout_s, timeout=keep)
        cache.delete_many([self._failures_key, self._trial_key])
        BREAKER_TRANSITIONS.labels(breaker=self.name, to="open").inc()
        logger.warning(
            "circuit breaker opened",
            extra={"breaker": self.name, "reset_timeout_s": self.reset_timeout_s},
        )
