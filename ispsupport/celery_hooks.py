"""Celery signal receivers: the request id in task headers, task metrics, the worker's port.

Connected by ``ispsupport.celery`` when the Celery app is created, in every process (web and
worker), so a task published anywhere carries the id and a task run anywhere reports.

* ``before_task_publish``: the message headers get ``request_id`` (the current one, or a new
  one for work that starts without a request: beat, shell) and ``published_at``.
* ``task_prerun`` / ``task_postrun``: the worker sets the id from the headers (an eager task,
  run inline, keeps its caller's), counts the task and times it.
* ``worker_init``: with ``CELERY_METRICS_PORT`` set, the worker's main process serves Prometheus
  on ``CELERY_METRICS_ADDR:CELERY_METRICS_PORT``. Pool processes of a prefork worker are
  children: their series reach that port only through ``PROMETHEUS_MULTIPROC_DIR`` (the
  server then reads every process's files); without it, use ``--pool solo`` or ``threads``.
* ``setup_logging``: Celery must not replace the logging that Django's ``LOGGING`` set up
  (JSON, request ids, the personal-data mask).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

from celery import signals

from ispsupport import metrics, requestid
from ispsupport.language import customer_language

logger = logging.getLogger(__name__)

HEADER_REQUEST_ID = "request_id"
HEADER_PUBLISHED_AT = "published_at"

_local = threading.local()
_metrics_server: tuple[Any, threading.Thread] | None = None  # (server, thread) of the port


def _running() -> dict[str, list[tuple[Any, float, str, Any]]]:
    """Tasks running on this thread, by id (a stack: an eager retry reuses its task's id)."""
    running = getattr(_local, "running", None)
    if running is None:
        running = _local.running = {}
    return running


def _header(request: Any, name: str) -> Any:
    """A custom header: an attribute of the worker's request, or in ``headers`` (eager)."""
    value = getattr(request, name, None)
    if value is None:
        value = (getattr(request, "headers", None) or {}).get(name)
    return value


@signals.before_task_publish.connect(weak=False, dispatch_uid="ispsupport.stamp_task")
def stamp_task(
    sender: str | None = None,
    headers: dict[str, Any] | None = None,
    routing_key: str | None = None,
    **_kwargs: Any,
) -> None:
    if headers is None:
        return
    if not requestid.clean(headers.get(HEADER_REQUEST_ID)):
        headers[HEADER_REQUEST_ID] = requestid.get() or requestid.new()
    headers.setdefault(HEADER_PUBLISHED_AT, time.time())
    metrics.CELERY_TASKS_PUBLISHED.labels(queue=metrics.label(routing_key, default="default")).inc()


@signals.task_prerun.connect(weak=False, dispatch_uid="ispsupport.task_started")
def task_started(task_id: str | None = None, task: Any = None, **_kwargs: Any) -> None:
    if task is None or task_id is None:
        return
    request = task.request
    eager = bool(getattr(request, "is_eager", False))
    rid = requestid.clean(_header(request, HEADER_REQUEST_ID))
    if not rid and eager:
        rid = requestid.get()
    tokens = requestid.activate(rid, task=task.name)
    # A task speaks the customers' language whoever queued it: an eager task inside an English
    # admin request (development, tests) sends pt-BR like a worker does (ispsupport.language).
    language = customer_language()
    language.__enter__()
    _running().setdefault(task_id, []).append((tokens, time.perf_counter(), task.name, language))
    metrics.CELERY_TASKS_RUNNING.labels(task=task.name).inc()
    published_at = _header(request, HEADER_PUBLISHED_AT)
    if not eager and isinstance(published_at, int | float):
        queue = (getattr(request, "delivery_info", None) or {}).get("routing_key")
        metrics.CELERY_QUEUE_WAIT.labels(queue=metrics.label(queue, default="default")).observe(
            max(0.0, time.time() - float(published_at))
        )


@signals.task_postrun.connect(weak=False, dispatch_uid="ispsupport.task_finished")
def task_finished(
    task_id: str | None = None, task: Any = None, state: str | None = None, **_kwargs: Any
) -> None:
    stack = _running().get(task_id or "")
    if not stack:
        return
    tokens, started, name, language = stack.pop()
    if not stack:
        del _running()[task_id or ""]
    metrics.CELERY_TASK_SECONDS.labels(task=name).observe(time.perf_counter() - started)
    metrics.CELERY_TASKS.labels(task=name, state=metrics.label(state, default="unknown")).inc()
    metrics.CELERY_TASKS_RUNNING.labels(task=name).dec()
    requestid.deactivate(tokens)
    language.__exit__(None, None, None)
    from ispsupport import pools

    pools.sample_soon()


@signals.setup_logging.connect(weak=False, dispatch_uid="ispsupport.keep_django_logging")
def keep_django_logging(**_kwargs: Any) -> None:
    """Django already configured logging from ``settings.LOGGING``; tell Celery to leave it."""
    return None


@signals.worker_init.connect(weak=False, dispatch_uid="ispsupport.worker_metrics_server")
def start_metrics_server(sender: Any = None, **_kwargs: Any) -> None:
    from django.conf import settings

    port = int(getattr(settings, "CELERY_METRICS_PORT", 0) or 0)
    if not port:
        return
    addr = getattr(settings, "CELERY_METRICS_ADDR", "127.0.0.1") or "127.0.0.1"
    pool = str(getattr(sender, "pool_cls", "") or "")
    concurrency = int(getattr(sender, "concurrency", 1) or 1)
    if not metrics.multiprocess_dir() and "prefork" in pool.lower() and concurrency > 1:
        logger.warning(
            "celery metrics: prefork pool without PROMETHEUS_MULTIPROC_DIR; the pool processes' "
            "task series will not reach the metrics port (set it, or use --pool solo/threads)"
        )
    import prometheus_client

    global _metrics_server
    try:
        _metrics_server = prometheus_client.start_http_server(
            port, addr=addr, registry=metrics.collect_registry()
        )
    except OSError as exc:
        logger.error(
            "celery metrics: could not listen",
            extra={"port": port, "error": type(exc).__name__},
        )
        return
    logger.info("celery metrics: serving", extra={"addr": addr, "port": port})


@signals.worker_shutdown.connect(weak=False, dispatch_uid="ispsupport.worker_metrics_server_stop")
def stop_metrics_server(**_kwargs: Any) -> None:
    """Close the worker's metrics port (at worker shutdown; tests start several workers)."""
    global _metrics_server
    if _metrics_server is not None:
        server, thread = _metrics_server
        _metrics_server = None
        server.shutdown()
        server.server_close()
        thread.join(5)


@signals.worker_process_shutdown.connect(weak=False, dispatch_uid="ispsupport.worker_process_dead")
def worker_process_dead(pid: int | None = None, **_kwargs: Any) -> None:
    """Forget a finished pool process's live gauges (multiprocess mode)."""
    if metrics.multiprocess_dir():
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid or os.getpid())
