"""Where the webhook worker's time goes: queries, CPU time and a profile per processed message.

Stores ``--posts`` signed-body events (the same bodies as ``bench/webhook_ingest.py``: corpus
messages, fresh wamids, ``--customers`` pool) straight into ``WebhookEvent``, then runs the
worker step (``whatsapp.inbound.events_process_pending``) in this process against PostgreSQL
and Redis, and prints:

- wall and CPU time (this process only: the load of other programs on a shared machine does
  not inflate it much), per message and as messages/s per fully used core;
- queries per message, grouped by statement shape (what a batch costs the database);
- with ``--profile``, the top functions by cumulative time (cProfile).

Usage (defaults shown)::

    .venv/bin/python bench/webhook_process_profile.py --posts 400 --messages-per-post 5 \
        --customers 8000 [--profile] [--rounds 1]

``--rounds 2`` processes a second set of bodies after the first: the first round mostly opens
customers and conversations, the second mostly adds to open ones. ``DATABASE_URL`` (default
``postgres://postgres@127.0.0.1:5432/ispsupport_bench``) and ``REDIS_URL`` (default
``redis://127.0.0.1:6379/14``) select the servers; the database must be migrated (run
``bench/webhook_ingest.py`` once, or ``manage.py migrate``) and its tables are emptied first.
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import os
import pstats
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from webhook_ingest import _env, build_bodies  # noqa: E402


def _shape(sql: str) -> str:
    sql = re.sub(r"'(?:[^']|'')*'", "?", sql)
    sql = re.sub(r"\b\d+\b", "?", sql)
    sql = re.sub(r"\((?:\s*(?:%s|\?)\s*,?)+\)", "(…)", sql)
    sql = re.sub(r"(?:\(…\),?\s*)+", "(…) ", sql)
    return sql[:150]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--posts", type=int, default=400)
    parser.add_argument("--messages-per-post", type=int, default=5)
    parser.add_argument("--customers", type=int, default=8000)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--top", type=int, default=40)
    args = parser.parse_args()

    database_url = os.environ.get(
        "DATABASE_URL", "postgres://postgres@127.0.0.1:5432/ispsupport_bench"
    )
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/14")
    os.environ.update(_env(database_url, redis_url))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ispsupport.settings")
    os.environ["SLOW_QUERY_MS"] = "0"
    import django

    django.setup()
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from whatsapp import inbound
    from whatsapp.models import WebhookEvent

    connection.ensure_connection()
    connection.queries_log = collections.deque(maxlen=10**7)
    with connection.cursor() as c:
        c.execute(
            "TRUNCATE whatsapp_webhookevent, conversations_message, "
            "conversations_conversationevent, conversations_conversation, "
            "conversations_customer, conversations_liveevent CASCADE"
        )
    import redis

    redis.Redis.from_url(redis_url).flushdb()

    for round_no in range(1, args.rounds + 1):
        bodies = build_bodies(
            args.posts, args.messages_per_post, args.customers, seed=1000 + round_no
        )
        WebhookEvent.objects.bulk_create(
            [WebhookEvent(body=raw.decode(), body_sha256="x" * 64) for raw, _sig in bodies],
            batch_size=500,
        )
        messages = args.posts * args.messages_per_post
        profiler = cProfile.Profile() if args.profile else None
        with CaptureQueriesContext(connection) as queries:
            wall0, cpu0 = time.perf_counter(), time.process_time()
            if profiler:
                profiler.enable()
            done = inbound.events_process_pending()
            if profiler:
                profiler.disable()
            wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        assert done == args.posts, (done, args.posts)
        print(f"\n== round {round_no}: {args.posts} events, {messages} messages ==")
        print(
            f"wall {wall:.2f} s ({messages / wall:.0f} msg/s); this process's CPU {cpu:.2f} s = "
            f"{cpu / messages * 1000:.2f} ms/message ({messages / cpu:.0f} msg/s per core)"
        )
        shapes = collections.Counter(_shape(q["sql"]) for q in queries.captured_queries)
        print(f"queries: {len(queries)} = {len(queries) / messages:.2f} per message")
        for shape, count in shapes.most_common(25):
            print(f"  {count:6d}  {shape}")
        if profiler:
            stats = pstats.Stats(profiler)
            stats.sort_stats("cumulative").print_stats(args.top)
            stats.sort_stats("tottime").print_stats(args.top)


if __name__ == "__main__":
    main()
