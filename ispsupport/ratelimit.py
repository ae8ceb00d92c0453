"""Rate limiting shared by every worker: a GCRA limiter on Redis, or the Django cache as fallback.

Contract:

* ``allow(key, limit, window_s, burst=None) -> (allowed, retry_after_s)``: at most ``limit``
  events per ``window_s`` seconds in the long run, and at most ``burst`` (default ``limit``)
  back to back from idle. When refused, ``retry_after_s`` is exactly when the next event would
  be allowed, so a caller can schedule itself for that moment instead of dropping the work.
* ``allow_all(rules)`` checks several rules at once and consumes from all of them only when
  every one allows (a send must fit both the number's tier and the customer's pair limit).
* ``hold(key, seconds)`` / ``held_for(key)``: a penalty box (Meta asked us to back off from one
  recipient). ``strike(key, ttl_s)`` counts consecutive penalties for exponential backoff.

Algorithm: the generic cell rate algorithm (one key per rule holding the "theoretical arrival
time"). It is exact, needs one small value per key, and is atomic on Redis through a Lua script
that reads the server's clock (``TIME``), so workers on machines with skewed clocks agree.

Backends: when the default cache is django-redis, the raw Redis client of that cache is used
(shared by all processes). Otherwise (the embedded default: local-memory cache, one process) a
process-wide lock makes read-modify-write on the cache atomic for that process.

Keys are namespaced ``isp:rl:``; they carry ids, never phone numbers or tokens.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

from django.core.cache import cache

PREFIX = "isp:rl:"


@dataclass(frozen=True, slots=True)
class Rule:
    """``limit`` events per ``window_s`` seconds, ``burst`` of them at once (default ``limit``)."""

    key: str
    limit: int
    window_s: float
    burst: int | None = None

    @property
    def interval_us(self) -> int:
        return max(1, round(self.window_s / self.limit * 1_000_000))

    @property
    def tolerance_us(self) -> int:
        burst = self.burst if self.burst is not None else self.limit
        return self.interval_us * max(0, burst - 1)


class Backend(Protocol):
    def allow_all(self, rules: list[Rule], now_us: int | None = None) -> tuple[bool, float]: ...
    def hold(self, key: str, seconds: float) -> None: ...
    def held_for(self, key: str) -> float: ...
    def strike(self, key: str, ttl_s: int) -> int: ...
    def reset_strikes(self, key: str) -> None: ...
    def clear(self, key: str) -> None: ...


# KEYS: one per rule. ARGV: now_us (or "" for the server clock), then (interval, tolerance) per rule.
# Returns {1, 0} and consumes from every rule, or {0, wait_us} and changes nothing.
_GCRA_LUA = """
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local wait = 0
local tats = {}
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[2 * i])
  local tolerance = tonumber(ARGV[2 * i + 1])
  local tat = tonumber(redis.call('GET', key) or now)
  if tat < now then tat = now end
  local allow_at = tat - tolerance
  if allow_at > now then
    if allow_at - now > wait then wait = allow_at - now end
  end
  tats[i] = tat + interval
end
if wait > 0 then
  return {0, wait}
end
for i, key in ipairs(KEYS) do
  local ttl_ms = math.ceil((tats[i] - now) / 1000) + 1000
  redis.call('SET', key, string.format('%.0f', tats[i]), 'PX', ttl_ms)
end
return {1, 0}
"""

# A penalty that only ever grows: keep the later of the current and the new expiry.
_HOLD_LUA = """
local ms = tonumber(ARGV[1])
local current = redis.call('PTTL', KEYS[1])
if current < ms then
  redis.call('SET', KEYS[1], '1', 'PX', ms)
end
return 1
"""


class RedisBackend:
    """Atomic across processes and machines; ``client`` is a redis-py client."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self._gcra = client.register_script(_GCRA_LUA)
        self._hold = client.register_script(_HOLD_LUA)

    def allow_all(self, rules: list[Rule], now_us: int | None = None) -> tuple[bool, float]:
        args: list[Any] = ["" if now_us is None else int(now_us)]
        for rule in rules:
            args += [rule.interval_us, rule.tolerance_us]
        allowed, wait_us = self._gcra(keys=[PREFIX + r.key for r in rules], args=args)
        return bool(allowed), int(wait_us) / 1_000_000

    def hold(self, key: str, seconds: float) -> None:
        self._hold(keys=[PREFIX + "hold:" + key], args=[max(1, int(seconds * 1000))])

    def held_for(self, key: str) -> float:
        ms = self.client.pttl(PREFIX + "hold:" + key)
        return ms / 1000 if ms and ms > 0 else 0.0

    def strike(self, key: str, ttl_s: int) -> int:
        name = PREFIX + "strike:" + key
        pipe = self.client.pipeline()
        pipe.incr(name)
        pipe.expire(name, ttl_s)
        count, _ = pipe.execute()
        return int(count)

    def reset_strikes(self, key: str) -> None:
        self.client.delete(PREFIX + "strike:" + key)

    def clear(self, key: str) -> None:
        self.client.delete(PREFIX + key, PREFIX + "hold:" + key, PREFIX + "strike:" + key)


class CacheBackend:
    """Django cache with a process-wide lock: atomic within one process (the embedded default)."""

    _lock = threading.Lock()

    def __init__(self, cache_backend: Any) -> None:
        self.cache = cache_backend

    @staticmethod
    def _now_us() -> int:
        return time.time_ns() // 1000

    def allow_all(self, rules: list[Rule], now_us: int | None = None) -> tuple[bool, float]:
        now = self._now_us() if now_us is None else int(now_us)
        with self._lock:
            wait = 0
            tats: list[int] = []
            for rule in rules:
                tat = max(int(self.cache.get(PREFIX + rule.key) or now), now)
                allow_at = tat - rule.tolerance_us
                if allow_at > now:
                    wait = max(wait, allow_at - now)
                tats.append(tat + rule.interval_us)
            if wait:
                return False, wait / 1_000_000
            for rule, tat in zip(rules, tats, strict=True):
                ttl = max(1, -(-(tat - now) // 1_000_000) + 1)
                self.cache.set(PREFIX + rule.key, tat, timeout=ttl)
            return True, 0.0

    def hold(self, key: str, seconds: float) -> None:
        with self._lock:
            until = time.time() + seconds
            current = self.cache.get(PREFIX + "hold:" + key) or 0.0
            if until > current:
                self.cache.set(PREFIX + "hold:" + key, until, timeout=int(seconds) + 1)

    def held_for(self, key: str) -> float:
        until = self.cache.get(PREFIX + "hold:" + key) or 0.0
        return max(0.0, until - time.time())

    def strike(self, key: str, ttl_s: int) -> int:
        with self._lock:
            count = int(self.cache.get(PREFIX + "strike:" + key) or 0) + 1
            self.cache.set(PREFIX + "strike:" + key, count, timeout=ttl_s)
            return count

    def reset_strikes(self, key: str) -> None:
        self.cache.delete(PREFIX + "strike:" + key)

    def clear(self, key: str) -> None:
        self.cache.delete_many([PREFIX + key, PREFIX + "hold:" + key, PREFIX + "strike:" + key])


_backend: Backend | None = None
_backend_lock = threading.Lock()


def get_backend() -> Backend:
    """The process's backend: Redis when the default cache is django-redis, else the cache."""
    global _backend
    if _backend is None:
        with _backend_lock:
            if _backend is None:
                _backend = _make_default_backend()
    return _backend


def _make_default_backend() -> Backend:
    if hasattr(cache, "client") and hasattr(cache.client, "get_client"):
        from django_redis import get_redis_connection

        return RedisBackend(get_redis_connection("default"))
    return CacheBackend(cache)


def reset_backend() -> None:
    """Forget the chosen backend (tests that switch the cache setting call this)."""
    global _backend
    _backend = None


def allow(key: str, limit: int, window_s: float, *, burst: int | None = None) -> tuple[bool, float]:
    """One event under ``key``: ``(True, 0.0)``, or ``(False, seconds until allowed)``."""
    return allow_all([Rule(key, limit, window_s, burst)])


def allow_all(rules: list[Rule]) -> tuple[bool, float]:
    """One event under every rule, all or nothing; the wait is the longest of the refusals."""
    allowed, wait = get_backend().allow_all(rules)
    _count(rules, allowed)
    return allowed, wait


def scope(key: str) -> str:
    """The rule family of a key, without its id (``wa:pair:123:45`` → ``wa:pair``)."""
    return ":".join(key.split(":")[:2])


def _count(rules: list[Rule], allowed: bool) -> None:
    from ispsupport.metrics import RATE_LIMIT_DECISIONS

    name = "+".join(sorted({scope(rule.key) for rule in rules}))
    RATE_LIMIT_DECISIONS.labels(scope=name, result="allowed" if allowed else "refused").inc()


def hold(key: str, seconds: float) -> None:
    """Refuse ``key`` for the next ``seconds`` (never shortens an existing hold)."""
    get_backend().hold(key, seconds)


def held_for(key: str) -> float:
    """Seconds left on the hold of ``key`` (0 when free)."""
    return get_backend().held_for(key)


def strike(key: str, ttl_s: int) -> int:
    """Count one more consecutive penalty for ``key`` (forgotten ``ttl_s`` after the last)."""
    return get_backend().strike(key, ttl_s)


def reset_strikes(key: str) -> None:
    """Forget the consecutive penalties of ``key`` (after a success)."""
    get_backend().reset_strikes(key)


def clear(key: str) -> None:
    """Forget the limiter state, hold and strikes of ``key``."""
    get_backend().clear(key)
