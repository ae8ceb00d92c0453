"""gunicorn settings for the web role (``gunicorn whatsapp.wsgi:application -c deploy/gunicorn.conf.py``).

Sync workers on purpose: Django under WSGI costs about a tenth of the framework time per request
that it costs under ASGI (README "Serving topology"), and the balancer in front (nginx) buffers
slow clients, so a sync worker is never held by a slow upload or download. One request at a time
per worker also makes the database pool arithmetic simple: a worker needs one connection
(``DB_POOL_MAX_SIZE=2`` leaves one spare for the rare nested use).

Every value comes from the environment so the Procfile, docker-compose and ``make prod-local``
share this one file:

- ``PORT`` (8000) and ``WEB_BIND_HOST`` (0.0.0.0): where to listen;
- ``WEB_CONCURRENCY``: worker processes (default 2 × cores + 1, capped at 8);
- ``WEB_TIMEOUT`` (30 s): a worker silent for longer is killed and replaced;
- ``WEB_MAX_REQUESTS`` (2000, jittered): workers are recycled, which bounds slow leaks.

With ``PROMETHEUS_MULTIPROC_DIR`` set (README "Metrics and logs") every worker writes its series
to that directory and ``/metrics`` adds them up; ``child_exit`` tells the client library when a
worker exits (recycled or killed), so its live gauges stop counting. The directory must exist,
empty, before gunicorn starts (the entry point empties it).
"""

from __future__ import annotations

import multiprocessing
import os


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw else default


bind = f"{os.environ.get('WEB_BIND_HOST', '0.0.0.0')}:{_int('PORT', 8000)}"
workers = _int("WEB_CONCURRENCY", min(8, multiprocessing.cpu_count() * 2 + 1))
worker_class = "sync"
timeout = _int("WEB_TIMEOUT", 30)
graceful_timeout = _int("WEB_GRACEFUL_TIMEOUT", 20)
# Meta's webhook arrives in bursts; a deep accept queue absorbs them instead of refusing.
backlog = 2048
max_requests = _int("WEB_MAX_REQUESTS", 2000)
max_requests_jitter = max_requests // 10
# The balancer writes the access log; the application logs go to stderr (JSON with DEBUG off).
accesslog = None
errorlog = "-"
loglevel = os.environ.get("WEB_LOG_LEVEL", "warning")
# Heartbeat files in memory: a container's overlay filesystem can stall them (false timeouts).
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
# The client address is the application's business (TRUSTED_PROXY_COUNT); gunicorn itself only
# needs to trust the balancer for wsgi.url_scheme.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
proc_name = "ispsupport-web"


def child_exit(server, worker):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
