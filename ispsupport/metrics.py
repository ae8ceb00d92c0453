"""Prometheus metrics: helpers, the infrastructure series, scrape-time collectors and ``/metrics``.

Layers: this module holds what is cross-cutting (database, pools, Celery, rate limits, circuit
breakers). Each domain app keeps its own series in ``<app>/metrics.py`` built with the helpers
below, and registers the gauges that read database state with ``register_state_collector``.
README "Metrics" lists every series; a test fails when the list and ``/metrics`` disagree.

Two kinds of series:

* **Events** (counters, histograms, in-process gauges) are recorded where they happen, with one
  call. Counters about database writes are recorded on commit (``on_commit``), so a rolled
  back transaction counts nothing.
* **State** (conversations by state, outbox backlog, agents online…) is read from the database
  when Prometheus scrapes, by cheap indexed queries cached per process for
  ``METRICS_STATE_CACHE_SECONDS``; a collector that fails is skipped and counted, never a 500.

Several processes: with ``PROMETHEUS_MULTIPROC_DIR`` set (before the process starts: the
client library reads it at import) every process writes its series to files in that directory
and ``/metrics`` adds them up (``MultiProcessCollector``); gauges declare how (``livesum``:
the sum over live processes). Without it each process reports its own (the embedded default,
one process). Give each role (web, each Celery worker) its own directory, emptied at start.

Labels never carry customer identifiers: only bounded sets (types, states, reasons, codes).
"""

from __future__ import annotations

import functools
import logging
import os
import platform
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import ParamSpec, TypeVar

import prometheus_client
from django.conf import settings
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.utils.crypto import constant_time_compare
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

from ispsupport import brokerstats

logger = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

# "_created" samples double the output and nothing here reads them.
prometheus_client.disable_created_metrics()

# --- Buckets (seconds) ------------------------------------------------------------------------

FAST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
LAG_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0, 3600.0)
HUMAN_BUCKETS = (30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 28800, 86400, 259200)
CONVERSATION_BUCKETS = (60, 300, 900, 1800, 3600, 7200, 14400, 43200, 86400, 259200, 604800)


def multiprocess_dir() -> str:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")


# --- Helpers for every app's metrics module ---------------------------------------------------


def counter(
    name: str,
    documentation: str,
    labelnames: Sequence[str] = (),
    *,
    initial: Iterable[Sequence[str]] = (),
) -> Counter:
    """A counter named ``name`` (``_total`` is added on output).

    ``initial``: label combinations exported as 0 from the start, so rates and alerts see
    the series before the first event (and README's check finds it).
    """
    metric = Counter(name, documentation, labelnames)
    for values in initial:
        metric.labels(*values)
    return metric


def gauge(
    name: str, documentation: str, labelnames: Sequence[str] = (), *, mode: str = "livesum"
) -> Gauge:
    """An in-process gauge; across processes it is combined by ``mode`` (see module doc)."""
    return Gauge(name, documentation, labelnames, multiprocess_mode=mode)


def histogram(
    name: str,
    documentation: str,
    labelnames: Sequence[str] = (),
    *,
    buckets: Sequence[float] = FAST_BUCKETS,
) -> Histogram:
    return Histogram(name, documentation, labelnames, buckets=buckets)


def on_commit(fn: Callable[[], object]) -> None:
    """Record ``fn`` when the current transaction commits (at once outside one)."""
    transaction.on_commit(fn, robust=True)


def counts_result(metric: Counter) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorator: count each call by the ``result`` attribute of what it returns ("error" when
    it raises). For services that return an outcome object (one line above the ``def``)."""

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                outcome = fn(*args, **kwargs)
            except Exception:
                metric.labels(result="error").inc()
                raise
            metric.labels(result=label(getattr(outcome, "result", None), default="unknown")).inc()
            return outcome

        return wrapper

    return decorate


def label(value: object, *, default: str = "none", max_length: int = 40) -> str:
    """A safe label value: short, lower-case, only ``[a-z0-9_:.-]`` (bounded, no free text)."""
    text = str(value if value not in (None, "") else default).lower()[:max_length]
    return "".join(c if c.isalnum() or c in "_:.-" else "_" for c in text)


# --- Infrastructure series --------------------------------------------------------------------

DB_SLOW_QUERIES = counter(
    "ispsupport_db_slow_queries",
    "Database queries slower than DB_SLOW_QUERY_MS (each one is logged with its location).",
    ["alias"],
    initial=[("default",)],
)
DB_POOL_CONNECTIONS = gauge(
    "ispsupport_db_pool_connections",
    "Connections held by the PostgreSQL pools, by state (in_use, idle); summed over processes.",
    ["alias", "state"],
)
DB_POOL_MAX = gauge(
    "ispsupport_db_pool_max_connections",
    "Configured maximum size of the PostgreSQL pools (DB_POOL_MAX_SIZE); summed over processes.",
    ["alias"],
)
DB_POOL_WAITING = gauge(
    "ispsupport_db_pool_requests_waiting",
    "Requests waiting for a free pooled connection right now (saturation).",
    ["alias"],
)
DB_POOL_CHECKOUTS = counter(
    "ispsupport_db_pool_checkouts",
    "Connections handed out by the PostgreSQL pools.",
    ["alias"],
)
DB_POOL_WAIT_SECONDS = counter(
    "ispsupport_db_pool_wait_seconds",
    "Time spent waiting for a pooled connection (add up; rate() gives seconds waited per second).",
    ["alias"],
)
DB_POOL_ERRORS = counter(
    "ispsupport_db_pool_errors",
    "Pool checkouts that failed (timed out after DB_POOL_TIMEOUT_SECONDS, or the pool was closed).",
    ["alias"],
)
REDIS_POOL_CONNECTIONS = gauge(
    "ispsupport_redis_pool_connections",
    "Connections of the Redis client pools, by state (in_use, idle); summed over processes.",
    ["pool", "state"],
)
REDIS_POOL_MAX = gauge(
    "ispsupport_redis_pool_max_connections",
    "Maximum size of the Redis client pools; summed over processes.",
    ["pool"],
)
RATE_LIMIT_DECISIONS = counter(
    "ispsupport_rate_limit_decisions",
    "Rate-limiter decisions by rule scope (e.g. wa:num, wa:pair, gemini:rpm, webhook:ip, login:ip) "
    "and result (allowed, refused, degraded: the limiter's store was unreachable).",
    ["scope", "result"],
)
BREAKER_TRANSITIONS = counter(
    "ispsupport_circuit_breaker_transitions",
    "Circuit breaker state changes (to: open, closed).",
    ["breaker", "to"],
    initial=[("gemini", "open"), ("gemini", "closed")],
)
COLLECTOR_ERRORS = counter(
    "ispsupport_metrics_collector_errors",
    "Scrape-time collectors that raised (their series are missing or stale in that scrape).",
    ["collector"],
)
COLLECTOR_SECONDS = gauge(
    "ispsupport_metrics_collector_duration_seconds",
    "Time the last run of each scrape-time collector took.",
    ["collector"],
    mode="livemax",
)
CELERY_TASKS = counter(
    "ispsupport_celery_tasks",
    "Celery tasks finished, by task name and state (success, failure, retry, ignored, rejected).",
    ["task", "state"],
)
CELERY_TASK_SECONDS = histogram(
    "ispsupport_celery_task_duration_seconds",
    "Run time of Celery tasks, by task name.",
    ["task"],
    buckets=(*FAST_BUCKETS, 30.0, 60.0, 300.0),
)
CELERY_TASKS_RUNNING = gauge(
    "ispsupport_celery_tasks_running",
    "Celery tasks running right now, by task name; summed over worker processes.",
    ["task"],
)
CELERY_TASKS_PUBLISHED = counter(
    "ispsupport_celery_tasks_published",
    "Task messages sent to the broker, by queue (eager runs publish nothing).",
    ["queue"],
)
CELERY_QUEUE_WAIT = histogram(
    "ispsupport_celery_queue_wait_seconds",
    "Time a task message waited in the broker before a worker started it, by queue.",
    ["queue"],
    buckets=LAG_BUCKETS,
)


# --- Scrape-time collectors -------------------------------------------------------------------

StateCollector = Callable[[], Iterable[Metric]]
_state_collectors: dict[str, StateCollector] = {}
_state_cache: dict[str, tuple[float, list[Metric]]] = {}
_state_lock = threading.Lock()


def register_state_collector(name: str, collect: StateCollector) -> None:
    """Add a function that returns metric families read from the database or a broker.

    Apps call this from ``AppConfig.ready()``. It runs only when ``/metrics`` is scraped, at
    most once per ``METRICS_STATE_CACHE_SECONDS`` per process; keep its queries on indexes.
    """
    _state_collectors[name] = collect


def clear_state_cache() -> None:
    with _state_lock:
        _state_cache.clear()


class _StateCollector:
    """Runs the registered state collectors (with the per-process cache) for one scrape."""

    def collect(self) -> Iterable[Metric]:
        ttl = float(getattr(settings, "METRICS_STATE_CACHE_SECONDS", 15))
        now = time.monotonic()
        for name, collect in list(_state_collectors.items()):
            with _state_lock:
                cached = _state_cache.get(name)
            if cached is not None and now - cached[0] < ttl:
                yield from cached[1]
                continue
            started = time.perf_counter()
            try:
                families = list(collect())
            except Exception as exc:
                COLLECTOR_ERRORS.labels(collector=name).inc()
                logger.warning(
                    "metrics: state collector failed",
                    extra={"collector": name, "error": type(exc).__name__},
                )
                families = cached[1] if cached is not None else []
            else:
                with _state_lock:
                    _state_cache[name] = (now, families)
            COLLECTOR_SECONDS.labels(collector=name).set(time.perf_counter() - started)
            yield from families


STATE_REGISTRY = CollectorRegistry(auto_describe=False)
STATE_REGISTRY.register(_StateCollector())  # type: ignore[arg-type]


def _build_info() -> Iterable[Metric]:
    family = GaugeMetricFamily(
        "ispsupport_build_info",
        "Always 1; the labels say which version and Python serve (and in which mode).",
        labels=["version", "python", "multiprocess"],
    )
    family.add_metric(
        [
            getattr(settings, "APP_VERSION", "") or "dev",
            platform.python_version(),
            "yes" if multiprocess_dir() else "no",
        ],
        1,
    )
    yield family


BREAKER_STATES = {"closed": 0, "half_open": 1, "open": 2}
_breakers: set[str] = set()


def register_breaker(name: str) -> None:
    """Expose the state of the circuit breaker ``name`` (``ispsupport.breaker``) on scrape."""
    _breakers.add(name)


def _breaker_states() -> Iterable[Metric]:
    from ispsupport.breaker import CircuitBreaker

    family = GaugeMetricFamily(
        "ispsupport_circuit_breaker_state",
        "Circuit breakers shared by all workers (gemini, erp…): 0 closed, 1 half-open (one trial "
        "call let through), 2 open (calls are not made; the fallback answers).",
        labels=["breaker"],
    )
    for name in sorted(_breakers):
        # The state lives in the shared cache; thresholds do not matter for reading it.
        state = CircuitBreaker(name, fail_max=1, reset_timeout_s=1.0).state()
        family.add_metric([name], BREAKER_STATES.get(state, 0))
    yield family


register_state_collector("build_info", _build_info)
register_state_collector("celery_queues", brokerstats.celery_queue_lengths)
register_state_collector("breakers", _breaker_states)


def collect_registry() -> CollectorRegistry:
    """The registry of event series: every process's files in multiprocess mode, else ours."""
    if multiprocess_dir():
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        return registry
    return REGISTRY


def render() -> bytes:
    """The whole exposition: event series (all processes) and state read now."""
    from ispsupport import pools

    pools.sample()
    return prometheus_client.generate_latest(
        collect_registry()
    ) + prometheus_client.generate_latest(STATE_REGISTRY)


# --- /metrics -------------------------------------------------------------------------------


def _refusal(request: HttpRequest) -> HttpResponse | None:
    """Who may scrape: an allowed address, plus the bearer token when one is configured.

    The address is ``ispsupport.security.client_ip`` (honours ``TRUSTED_PROXY_COUNT``). A
    request relayed by a proxy we were not told about (``X-Forwarded-For`` present while
    ``TRUSTED_PROXY_COUNT`` is 0) is refused by address: its ``REMOTE_ADDR`` is the proxy's,
    and a local proxy would otherwise make the whole internet look like loopback. Sessions and
    roles play no part: the console's users never need this page.
    """
    from ispsupport.security import client_ip, ip_allowed

    relayed = bool(request.META.get("HTTP_X_FORWARDED_FOR")) and not int(
        getattr(settings, "TRUSTED_PROXY_COUNT", 0) or 0
    )
    cidrs = list(getattr(settings, "METRICS_IP_ALLOWLIST", []))
    if cidrs and (relayed or not ip_allowed(client_ip(request), cidrs)):
        logger.warning("metrics: scrape refused by address")
        return HttpResponse("Forbidden", status=403, content_type="text/plain")
    token = getattr(settings, "METRICS_TOKEN", "") or ""
    if token:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        scheme, _, presented = header.partition(" ")
        if scheme.lower() != "bearer" or not constant_time_compare(presented.strip(), token):
            response = HttpResponse("Unauthorized", status=401, content_type="text/plain")
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return response
    return None


@never_cache
@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    """Prometheus' scrape endpoint (``/metrics``); see ``_refusal`` for who may read it."""
    refusal = _refusal(request)
    if refusal is not None:
        return refusal
    return HttpResponse(render(), content_type=prometheus_client.CONTENT_TYPE_LATEST)
