"""Liveness and readiness endpoints.

``/healthz`` says the process answers. ``/readyz`` checks every dependency the product needs to
do useful work (database, cache, Celery broker, channel layer, plus checks that apps register)
and answers 503 naming the parts that failed, so a load balancer stops sending traffic here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from urllib.parse import urlparse

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from ispsupport import dbpool

logger = logging.getLogger(__name__)

# A check returns None when healthy, or a short reason (no secrets, no personal data).
Check = Callable[[], "str | None"]
_extra_checks: dict[str, Check] = {}


def register_check(name: str, check: Check) -> None:
    """Add a readiness check; apps call this from ``AppConfig.ready()``."""
    _extra_checks[name] = check


def _check_database() -> str | None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return None


def _check_cache() -> str | None:
    cache.set("readyz:probe", "1", timeout=10)
    if cache.get("readyz:probe") != "1":
        return "cache did not return the value just written"
    return None


def _ping_url(url: str) -> str | None:
    scheme = urlparse(url).scheme
    if scheme in {"redis", "rediss", "unix"}:
        import redis

        client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
        try:
            client.ping()
        finally:
            client.close()
        return None
    from kombu import Connection

    with Connection(url, connect_timeout=1) as conn:
        conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0)
    return None


def _check_broker() -> str | None:
    if not settings.CELERY_BROKER_URL:
        return None  # eager mode: tasks run inline, there is no broker to reach
    return _ping_url(settings.CELERY_BROKER_URL)


def _check_channel_layer() -> str | None:
    if not settings.CHANNEL_REDIS_URL:
        return None
    return _ping_url(settings.CHANNEL_REDIS_URL)


def run_checks() -> dict[str, str]:
    """Run every check; return ``{name: "ok" | reason}``."""
    checks: dict[str, Check] = {
        "database": _check_database,
        "cache": _check_cache,
        "broker": _check_broker,
        "channel_layer": _check_channel_layer,
        **_extra_checks,
    }
    results: dict[str, str] = {}
    for name, check in checks.items():
        try:
            reason = check()
        except Exception as exc:  # a failing dependency must become a 503, never a 500
            logger.warning(
                "readiness check failed", extra={"check": name, "error": type(exc).__name__}
            )
            reason = f"unreachable ({type(exc).__name__})"
        results[name] = reason or "ok"
    return results


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    results = run_checks()
    failing = sorted(name for name, value in results.items() if value != "ok")
    body = {"status": "ok" if not failing else "unavailable", "failing": failing, "checks": results}
    # Informational: saturation never fails readiness (see ispsupport.dbpool).
    pool = dbpool.pool_stats()
    if pool is not None:
        body["database_pool"] = pool
        if pool["waiting"]:
            logger.warning("database pool saturated", extra={"pool": pool})
    return JsonResponse(body, status=503 if failing else 200)
