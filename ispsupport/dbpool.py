"""The database pool of this process: saturation for /readyz, and every exhaustion logged.

Each process keeps its own psycopg pool of at most ``DB_POOL_MAX_SIZE`` connections (README
"Connection pool"). When every connection is busy a request waits up to
``DB_POOL_TIMEOUT_SECONDS`` and then fails with ``psycopg_pool.PoolTimeout`` (a 500 for a page,
a retry for a task, a 503 for the webhook, which Meta retries). Two signals for operators:

- ``/readyz`` reports ``database_pool`` (max, open, in use, waiting, and the totals of waits and
  timeouts since the process started). It never fails readiness on saturation: taking a busy
  process out of the balancer moves its load to processes that are as busy;
- every exhaustion is logged at ERROR with ``event=db_pool_exhausted`` (and the process role),
  from requests and from Celery tasks: alert on any occurrence. The same figures, summed over
  processes, are on /metrics (``ispsupport_db_pool_*``, ``ispsupport.pools``).
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import connections

logger = logging.getLogger(__name__)

POOL_EXHAUSTED_EVENT = "db_pool_exhausted"


def pool_stats(alias: str = "default") -> dict[str, int] | None:
    """This process's pool figures, or None without a pool (SQLite, or no pool configured)."""
    pool = getattr(connections[alias], "pool", None)
    if pool is None:
        return None
    stats = pool.get_stats()
    size, available = stats.get("pool_size", 0), stats.get("pool_available", 0)
    return {
        "max": stats.get("pool_max", 0),
        "open": size,
        "in_use": max(0, size - available),
        "waiting": stats.get("requests_waiting", 0),
        "waited_total": stats.get("requests_queued", 0),
        "timeouts_total": stats.get("requests_errors", 0),
    }


def is_pool_timeout(exc: BaseException | None) -> bool:
    """True when ``exc`` is, or was caused by, the pool running out of connections."""
    from psycopg_pool import PoolTimeout

    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, PoolTimeout):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


def log_if_exhausted(exc: BaseException | None, *, where: str) -> bool:
    """Log ``db_pool_exhausted`` when ``exc`` comes from an exhausted pool; True if it did."""
    if not is_pool_timeout(exc):
        return False
    logger.error(
        "database pool exhausted",
        extra={"event": POOL_EXHAUSTED_EVENT, "where": where, "pool": pool_stats()},
    )
    return True


def on_request_exception(sender: Any, request: Any = None, **kwargs: Any) -> None:
    import sys

    log_if_exhausted(sys.exc_info()[1], where="request")


def on_task_failure(
    sender: Any = None, exception: BaseException | None = None, **kwargs: Any
) -> None:
    log_if_exhausted(exception, where=f"task {getattr(sender, 'name', '?')}")
