"""Webhook ingest benchmark: signed webhooks from many concurrent clients, on the real topology.

Starts, on this machine: gunicorn (sync workers, WSGI) serving the webhook, a Celery worker
consuming the ``webhooks`` queue, both against PostgreSQL and Redis. Then sends signed
webhooks at a fixed offered rate from several client processes (open loop: latency is measured
from each request's scheduled send time, so a stalled server is not hidden), each body a mix of
corpus message types with fresh wamids from a pool of customers. Prints:

- acknowledged messages/s and requests/s, p50/p90/p99/max acknowledgement latency, errors;
- the time until every message is processed and stored, and the processing rate.

Usage (defaults shown)::

    .venv/bin/python bench/webhook_ingest.py --rate 1333 --duration 30 --messages-per-post 1 \
        --web-workers 4 --celery-concurrency 2

``DATABASE_URL`` (default ``postgres://postgres@127.0.0.1:5432/ispsupport_bench``) and
``REDIS_URL`` (default ``redis://127.0.0.1:6379/14``) select the servers; the database is
created and migrated, and its webhook/message tables are emptied first.
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing as mp
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.loadgen import PHONE_NUMBER_ID, build_bodies, client_process, pct  # noqa: E402

PY = sys.executable
SECRET = "bench-app-secret"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(database_url: str, redis_url: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "DEBUG": "0",
            "SECRET_KEY": "bench-" + "x" * 50,
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "SECURE_SSL_REDIRECT": "0",
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "WHATSAPP_APP_SECRET": SECRET,
            "WHATSAPP_VERIFY_TOKEN": "bench",
            "WHATSAPP_ACCESS_TOKEN": "bench",
            "WHATSAPP_PHONE_NUMBER_ID": PHONE_NUMBER_ID,
            "WHATSAPP_API_BASE_URL": "http://127.0.0.1:9/",  # nothing is sent in this bench
            "FIELD_ENCRYPTION_KEYS": "ZGV2LW9ubHktZmllbGQta2V5LWRvLW5vdC11c2UtISE=",
            "BLIND_INDEX_KEY": "bench-blind-index-key-0123456789abcdefghijklmnop",
            "LOG_LEVEL": "WARNING",
            "DB_POOL_MAX_SIZE": "4",
        }
    )
    return env


def _wait_http(port: int, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.3)
    raise SystemExit("web server did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=1333.0, help="offered messages per second")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of load")
    parser.add_argument("--messages-per-post", type=int, default=1)
    parser.add_argument("--customers", type=int, default=8000)
    parser.add_argument("--web-workers", type=int, default=4)
    parser.add_argument("--celery-concurrency", type=int, default=2)
    parser.add_argument("--client-processes", type=int, default=2)
    parser.add_argument("--client-threads", type=int, default=32, help="per client process")
    parser.add_argument("--drain-timeout", type=float, default=600.0)
    parser.add_argument(
        "--separate", action="store_true", help="start the worker only after the load ends"
    )
    args = parser.parse_args()

    database_url = os.environ.get(
        "DATABASE_URL", "postgres://postgres@127.0.0.1:5432/ispsupport_bench"
    )
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/14")
    env = _env(database_url, redis_url)
    dbname = database_url.rsplit("/", 1)[-1]
    subprocess.run(
        ["createdb", "-h", "127.0.0.1", "-U", "postgres", dbname],
        capture_output=True,
        check=False,
    )
    subprocess.run(
        [PY, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True
    )
    reset = (
        "from django.db import connection\n"
        "with connection.cursor() as c:\n"
        "    c.execute('TRUNCATE whatsapp_webhookevent, conversations_message, "
        "conversations_conversationevent, conversations_conversation, "
        "conversations_customer CASCADE')\n"
    )
    subprocess.run([PY, "manage.py", "shell", "-c", reset], cwd=ROOT, env=env, check=True)
    subprocess.run(["redis-cli", "-u", redis_url, "FLUSHDB"], capture_output=True, check=False)

    posts = int(args.rate * args.duration / args.messages_per_post)
    post_rate = args.rate / args.messages_per_post
    print(f"building {posts} signed bodies ({args.messages_per_post} message(s) each)…")
    bodies = build_bodies(
        posts, args.messages_per_post, args.customers, seed=os.getpid() % 9999, secret=SECRET
    )
    total_messages = posts * args.messages_per_post

    port = _free_port()
    web = subprocess.Popen(
        [
            PY, "-m", "gunicorn", "whatsapp.wsgi:application",
            "-w", str(args.web_workers), "-b", f"127.0.0.1:{port}",
            "--worker-class", "sync", "--backlog", "2048", "--log-level", "warning",
        ],
        cwd=ROOT,
        env=env,
    )  # fmt: skip
    worker_cmd = [
        PY, "-m", "celery", "-A", "ispsupport", "worker", "-Q", "webhooks",
        "-c", str(args.celery_concurrency), "--prefetch-multiplier", "8",
        "-l", "warning", "--without-gossip", "--without-mingle", "--without-heartbeat",
    ]  # fmt: skip
    # --separate: the worker starts only after the load, so the acknowledgement and the
    # processing are each measured with the machine to themselves.
    worker = None if args.separate else subprocess.Popen(worker_cmd, cwd=ROOT, env=env)
    try:
        _wait_http(port)
        queue: mp.Queue = mp.Queue()
        start_at = time.perf_counter() + 1.0
        procs = []
        for p in range(args.client_processes):
            share = bodies[p :: args.client_processes]
            proc = mp.Process(
                target=client_process,
                args=(
                    "127.0.0.1",
                    port,
                    share,
                    post_rate / args.client_processes,
                    start_at,
                    args.client_threads,
                    queue,
                ),
            )
            proc.start()
            procs.append(proc)
        results = []
        for _ in procs:
            results.extend(queue.get())
        for proc in procs:
            proc.join()
        load_end = time.perf_counter()
        wall = load_end - start_at
        ok = [lat for _at, lat, status in results if status == 200]
        errors = len(results) - len(ok)
        acked_messages = len(ok) * args.messages_per_post
        print("\n== acknowledgement ==")
        print(f"offered: {args.rate:.0f} msg/s ({post_rate:.0f} POST/s) for {args.duration:.0f} s")
        print(
            f"acknowledged: {acked_messages} messages in {wall:.1f} s = "
            f"{acked_messages / wall:.0f} msg/s ({len(ok) / wall:.0f} POST/s); errors: {errors}"
        )
        lat_ms = [x * 1000 for x in ok]
        print(
            "latency ms: p50 {:.1f}  p90 {:.1f}  p99 {:.1f}  max {:.1f}  mean {:.1f}".format(
                pct(lat_ms, 0.50),
                pct(lat_ms, 0.90),
                pct(lat_ms, 0.99),
                max(lat_ms or [float("nan")]),
                statistics.fmean(lat_ms) if lat_ms else float("nan"),
            )
        )
        # Drain: wait until every event is processed.
        count_sql = (
            "from whatsapp.models import WebhookEvent as E\n"
            "from conversations.models import Message as M\n"
            "print(E.objects.filter(status='received').count(), "
            "M.objects.filter(direction='in').count())\n"
        )
        if worker is None:
            worker = subprocess.Popen(worker_cmd, cwd=ROOT, env=env)
            # Stored events only start moving on a kick: one more acknowledgement gives it.
            _kick_env = dict(env)
            subprocess.run(
                [PY, "manage.py", "shell", "-c",
                 "from whatsapp.tasks.inbound import process_pending_webhook_events as t\n"
                 "t.delay()"],
                cwd=ROOT, env=_kick_env, check=True, capture_output=True,
            )  # fmt: skip
        drain_start = time.perf_counter()
        stored = 0
        while time.perf_counter() - drain_start < args.drain_timeout:
            out = subprocess.run(
                [PY, "manage.py", "shell", "-c", count_sql],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                check=True,
            ).stdout.split()
            pending, stored = int(out[-2]), int(out[-1])
            if pending == 0 and stored >= acked_messages:
                break
            time.sleep(1.0)
        drained_at = time.perf_counter()
        print("\n== processing ==")
        since = drain_start if args.separate else start_at
        print(
            f"stored {stored} of {acked_messages} acknowledged messages "
            f"(sent {total_messages}); backlog drained {drained_at - load_end:.1f} s after the "
            f"load ended; processing rate {stored / (drained_at - since):.0f} msg/s"
            + (" (worker alone, after the load)" if args.separate else " (during and after)")
        )
    finally:
        procs_alive = [p for p in (web, worker) if p is not None]
        for proc in procs_alive:
            proc.send_signal(signal.SIGTERM)
        for proc in procs_alive:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


if __name__ == "__main__":
    main()
