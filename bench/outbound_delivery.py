"""Outbound delivery throughput: the real delivery path against the Graph simulator over loopback.

Starts daphne serving the app (the simulator answers the Graph calls) in a separate process,
queues pending replies for distinct customers in the database, and delivers them from N worker
threads through ``whatsapp.delivery.message_deliver`` (claim → limiter → Graph → mark sent),
rescheduling refusals for the moment the limiter names, as the Celery task does.

Prints: replies delivered per second, p50/p99 of one delivery call, and the most sends seen in
any one-second window, next to the configured per-number rate (the limiter must hold it).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/ispsupport \\
    REDIS_URL=redis://127.0.0.1:6379/0 \\
    .venv/bin/python bench/outbound_delivery.py --messages 2000 --workers 8 --rate 80

Run it on PostgreSQL and Redis (the limiter is shared through Redis). It deletes the customers
it created when it ends. It makes no request outside 127.0.0.1.
"""

from __future__ import annotations

import argparse
import os
import queue
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--rate", type=int, default=80, help="WHATSAPP_SEND_RATE_PER_SECOND")
    parser.add_argument("--per-customer", type=int, default=2)
    args = parser.parse_args()

    port = free_port()
    env = {
        **os.environ,
        "DEBUG": os.environ.get("DEBUG", "1"),
        "SIMULATOR_ENABLED": "1",
        "SIMULATOR_WEBHOOK_URL": "",  # statuses would write to the same tables: not measured here
        "WHATSAPP_API_BASE_URL": f"http://127.0.0.1:{port}/simulator/graph",
        "WHATSAPP_SEND_RATE_PER_SECOND": str(args.rate),
        "CELERY_TASK_ALWAYS_EAGER": "1",
        "LOG_LEVEL": "WARNING",
    }
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ispsupport.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connections

    if not settings.REDIS_URL or "postgresql" not in settings.DATABASES["default"]["ENGINE"]:
        print("run this on PostgreSQL and Redis (DATABASE_URL, REDIS_URL)", file=sys.stderr)
        return 2
    call_command("migrate", verbosity=0)

    server = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
         "ispsupport.asgi:application"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        else:
            print("daphne did not start", file=sys.stderr)
            return 1
        return run(args, connections)
    finally:
        server.terminate()
        server.wait(timeout=10)


def run(args, connections) -> int:
    from conversations import outbox, services
    from conversations.models import Conversation, Customer, Message
    from ispsupport import ratelimit
    from whatsapp import delivery

    outbox.register_dispatcher(lambda message_id: None)  # the bench delivers by itself
    customers = max(1, args.messages // args.per_customer)
    stamp = int(time.time())
    ids: list[int] = []
    customer_ids: list[int] = []
    print(f"queueing {args.messages} replies to {customers} customers…", flush=True)
    for n in range(customers):
        wa_id = f"5599{stamp % 10**6:06d}{n:05d}"
        customer = services.customer_resolve(wa_id=wa_id, name="Bench")
        customer_ids.append(customer.pk)
        conversation, _ = services.conversation_get_or_open(customer=customer)
        Conversation.objects.filter(pk=conversation.pk).update(
            last_customer_message_at=django_now()
        )
        for i in range(args.per_customer):
            message = services.message_record_outbound(
                conversation=conversation, sender_kind="bot", text=f"Resposta {i} do bench"
            )
            ids.append(message.pk)
    ratelimit.reset_backend()

    work: queue.Queue[tuple[float, int]] = queue.Queue()
    for message_id in ids:
        work.put((0.0, message_id))
    durations: list[float] = []
    sent_at: list[float] = []
    lock = threading.Lock()
    done = threading.Event()
    remaining = [len(ids)]

    def worker() -> None:
        while not done.is_set():
            try:
                not_before, message_id = work.get(timeout=0.2)
            except queue.Empty:
                continue
            wait = not_before - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            began = time.monotonic()  # admission happens a few ms after this, before Graph
            started = time.perf_counter()
            outcome = delivery.message_deliver(message_id=message_id)
            elapsed = time.perf_counter() - started
            if outcome.retry_in is not None:
                work.put((time.monotonic() + outcome.retry_in, message_id))
                continue
            with lock:
                if outcome.result == "sent":
                    durations.append(elapsed)
                    sent_at.append(began)
                remaining[0] -= 1
                if remaining[0] == 0:
                    done.set()
        connections.close_all()

    started = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(args.workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    total = time.monotonic() - started

    sent_at.sort()
    busiest, j = 0, 0
    for i, t in enumerate(sent_at):
        while sent_at[j] < t - 1.0:
            j += 1
        busiest = max(busiest, i - j + 1)
    durations.sort()
    failed = Message.objects.filter(pk__in=ids).exclude(status="sent").count()
    print(f"delivered: {len(durations)} of {len(ids)} ({failed} not sent) in {total:.2f} s")
    print(f"throughput: {len(durations) / total:.1f} replies/s with {args.workers} workers")
    print(
        f"one delivery (claim, limiter, Graph call, mark sent): "
        f"p50 {statistics.median(durations) * 1000:.1f} ms, "
        f"p99 {durations[int(len(durations) * 0.99) - 1] * 1000:.1f} ms"
    )
    print(
        f"busiest 1-second window of admitted sends: {busiest} "
        f"(configured {args.rate}/s, burst {max(1, args.rate // 10)})"
    )

    Message.objects.filter(pk__in=ids).delete()
    bench_customers = Customer.objects.filter(pk__in=customer_ids)
    Conversation.objects.filter(customer__in=bench_customers).delete()
    bench_customers.delete()
    return 0


def django_now():
    from django.utils import timezone

    return timezone.now()


if __name__ == "__main__":
    raise SystemExit(main())
