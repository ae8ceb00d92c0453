"""Saturation of this process's connection pools, copied into Prometheus gauges.

PostgreSQL: Django's native psycopg pool (one per database alias and process, created on first
use when ``DATABASE_URL`` is PostgreSQL). Redis: the client pool of the django-redis cache,
which the rate limiter and the circuit breaker share.

``sample()`` reads the pools' own statistics (no I/O) and sets the gauges; it runs at most once
a second per process, after each request and each Celery task, and on every scrape, so the
figures of a busy process stay fresh. In multiprocess mode the gauges add up over live
processes: ``in_use`` close to ``max_connections`` or ``requests_waiting`` above 0 means the
processes are waiting for connections.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from ispsupport import metrics

logger = logging.getLogger(__name__)

_MIN_INTERVAL_S = 1.0
_last = 0.0
_lock = threading.Lock()


def sample_soon(**_kwargs: Any) -> None:
    """Signal receiver: ``sample()`` unless this process sampled less than a second ago."""
    if time.monotonic() - _last >= _MIN_INTERVAL_S:
        sample()


def sample() -> None:
    global _last
    if not _lock.acquire(blocking=False):
        return  # another thread is sampling right now
    try:
        _last = time.monotonic()
        _sample_database_pools()
        _sample_redis_pools()
    except Exception as exc:  # figures are best effort; never fail a request for them
        logger.warning("metrics: pool sampling failed", extra={"error": type(exc).__name__})
    finally:
        _lock.release()


def _sample_database_pools() -> None:
    from django.db import connections

    for alias in connections:
        wrapper = connections[alias]
        # The class-level registry of pools; reading ``wrapper.pool`` would create one.
        pool = getattr(wrapper, "_connection_pools", {}).get(alias)
        if pool is None:
            continue
        # get_stats, never pop_stats: /readyz (ispsupport.dbpool) reports the totals since start.
        stats = pool.get_stats()
        size = int(stats.get("pool_size", 0))
        available = int(stats.get("pool_available", 0))
        metrics.DB_POOL_CONNECTIONS.labels(alias=alias, state="in_use").set(
            max(0, size - available)
        )
        metrics.DB_POOL_CONNECTIONS.labels(alias=alias, state="idle").set(available)
        metrics.DB_POOL_MAX.labels(alias=alias).set(int(stats.get("pool_max", 0)))
        metrics.DB_POOL_WAITING.labels(alias=alias).set(int(stats.get("requests_waiting", 0)))
        metrics.DB_POOL_CHECKOUTS.labels(alias=alias).inc(_growth(alias, "requests_num", stats))
        metrics.DB_POOL_WAIT_SECONDS.labels(alias=alias).inc(
            _growth(alias, "requests_wait_ms", stats) / 1000.0
        )
        metrics.DB_POOL_ERRORS.labels(alias=alias).inc(_growth(alias, "requests_errors", stats))


_seen: dict[tuple[str, str], int] = {}


def _growth(alias: str, key: str, stats: dict[str, int]) -> int:
    """How much the pool's running total ``key`` grew since the last sample."""
    value = int(stats.get(key, 0))
    previous = _seen.get((alias, key), 0)
    _seen[(alias, key)] = value
    return value - previous if value >= previous else value  # reset elsewhere: count anew


def _redis_pools() -> dict[str, Any]:
    """The Redis client pools this process uses, by name (only django-redis caches so far)."""
    from django.conf import settings

    pools: dict[str, Any] = {}
    for alias, config in settings.CACHES.items():
        if "redis" not in config.get("BACKEND", "").lower():
            continue
        from django.core.cache import caches

        client = getattr(caches[alias], "client", None)
        if client is None or not hasattr(client, "get_client"):
            continue
        # Builds the client object only (no I/O); its pool is the one the cache shares.
        raw = client.get_client(write=True)
        pools["cache" if alias == "default" else f"cache_{alias}"] = raw.connection_pool
    return pools


def _sample_redis_pools() -> None:
    for name, pool in _redis_pools().items():
        in_use = len(getattr(pool, "_in_use_connections", ()) or ())
        idle = len(getattr(pool, "_available_connections", ()) or ())
        metrics.REDIS_POOL_CONNECTIONS.labels(pool=name, state="in_use").set(in_use)
        metrics.REDIS_POOL_CONNECTIONS.labels(pool=name, state="idle").set(idle)
        metrics.REDIS_POOL_MAX.labels(pool=name).set(int(getattr(pool, "max_connections", 0) or 0))
