"""Bot decision latency without the model: rules engine, KB lookup, policy and DB writes.

Times ``bot.services.bot_handle_inbound`` — the whole decision the Celery task runs for one
inbound message: loading the message and conversation, the policy snapshot and knowledge base,
the recent history, injection/contest checks, the rule-based classifier, the policy, and the
writes (the ``BotDecision`` row, the ``bot_decision`` event, the outbound replies in the outbox,
escalations and closes), all in one transaction. No Gemini key is set, so no model is called.
Inbound messages are stored beforehand (not timed). Messages are replayed from the labelled
evaluation sets, each conversation greeted first, so the mix covers greetings, KB answers,
"Sim" confirmations and every escalation rule.

Outbound delivery is out of scope: the outbox dispatcher is replaced by a no-op, as delivery
runs in another task on another queue.

Usage::

    .venv/bin/python bench/bot_decision_latency.py [--messages 2000] [--warmup 100]

``DATABASE_URL`` selects the database (default: a fresh SQLite file in a temp folder);
with PostgreSQL the database is migrated and the bot's and conversations' rows emptied first.
Prints p50/p90/p99/max wall-clock milliseconds, the same percentiles of the process's CPU time
(a fair figure when other work shares the CPU), queries per decision and the load average.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _setup_django() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ispsupport.settings")
    os.environ["GEMINI_API_KEY"] = ""  # the model is excluded from this measurement
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    if not os.environ.get("DATABASE_URL"):
        os.environ["SQLITE_PATH"] = str(Path(tempfile.mkdtemp(prefix="botbench-")) / "bench.db")
    import django

    django.setup()


def _texts() -> list[str]:
    rows: list[str] = []
    for name in ("dataset_dev.jsonl", "dataset_test.jsonl"):
        path = ROOT / "bot" / "evaluation" / name
        rows += [json.loads(line)["text"] for line in path.read_text("utf-8").splitlines() if line]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000, help="timed decisions (≥ 1000)")
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--no-audit",
        action="store_true",
        help="run with django-auditlog disabled, to see what the audit trail costs",
    )
    args = parser.parse_args()
    _setup_django()

    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    call_command("migrate", verbosity=0, interactive=False)

    from accounts.models import Team
    from bot.models import BotDecision
    from bot.services import bot_handle_inbound
    from conversations import outbox
    from conversations import services as conv
    from conversations.identity import customer_name_q
    from conversations.models import Conversation, ConversationEvent, Customer, Message

    outbox.register_dispatcher(lambda message_id: None)
    audit_off = contextlib.nullcontext
    if args.no_audit:
        from auditlog.context import disable_auditlog as audit_off
    BotDecision.objects.all().delete()
    ConversationEvent.objects.all().delete()
    Message.objects.all().delete()
    Conversation.objects.all().delete()
    # Bench customers are found by their name (names are encrypted: through the word index).
    Customer.objects.filter(customer_name_q("Bench Latency")).delete()
    for slug, name in (("suporte", "Suporte técnico"), ("financeiro", "Financeiro")):
        Team.objects.get_or_create(slug=slug, defaults={"name": name})

    rng = random.Random(args.seed)
    texts = _texts()
    follow_ups = ["sim", "obrigado", "não", "hmm", "2 via do boleto", "internet lenta"]
    total = args.warmup + args.messages
    timings: list[float] = []
    cpu_timings: list[float] = []
    query_counts: list[int] = []
    queries = [0]

    def count_queries(execute, sql, params, many, context):
        queries[0] += 1
        return execute(sql, params, many, context)

    decided = 0
    customer_seq = 0
    conversation = None

    def new_conversation():
        nonlocal customer_seq
        customer_seq += 1
        customer = conv.customer_resolve(wa_id=f"5599{customer_seq:09d}", name="Bench Latency")
        return conv.conversation_get_or_open(customer=customer)[0]

    while decided < total:
        if conversation is None or conversation.state != Conversation.State.BOT:
            conversation = new_conversation()
            text = "oi"
        else:
            conversation.refresh_from_db(fields=["state"])
            if conversation.state != Conversation.State.BOT:
                conversation = None
                continue
            text = rng.choice(texts) if rng.random() < 0.8 else rng.choice(follow_ups)
        message, _ = conv.message_record_inbound(
            conversation=conversation,
            wamid=f"wamid.BENCH{decided:08d}",
            type="text",
            timestamp=timezone.now(),
            text=text,
            payload={"type": "text", "text": {"body": text}},
        )
        queries[0] = 0
        cpu_started = time.process_time()
        started = time.perf_counter()
        with connection.execute_wrapper(count_queries), audit_off():
            result = bot_handle_inbound(message_id=message.pk)
        elapsed_ms = (time.perf_counter() - started) * 1000
        cpu_ms = (time.process_time() - cpu_started) * 1000
        assert result.status == "decided", result.status
        if decided >= args.warmup:
            timings.append(elapsed_ms)
            cpu_timings.append(cpu_ms)
            query_counts.append(queries[0])
        decided += 1
        conversation.refresh_from_db(fields=["state"])

    timings.sort()
    cpu_timings.sort()

    def pct(p: float, values: list[float] | None = None) -> float:
        values = timings if values is None else values
        return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]

    actions = BotDecision.objects.values_list("action", flat=True)
    mix: dict[str, int] = {}
    for action in actions:
        mix[action] = mix.get(action, 0) + 1
    print(
        f"database: {connection.vendor}  decisions timed: {len(timings)} "
        f"(warm-up {args.warmup})  audit trail: {'off' if args.no_audit else 'on'}"
    )
    print(f"conversations: {customer_seq}  actions: {dict(sorted(mix.items()))}")
    print(
        f"decision latency ms  p50 {pct(50):.2f}  p90 {pct(90):.2f}  p99 {pct(99):.2f}  "
        f"max {timings[-1]:.2f}  mean {statistics.fmean(timings):.2f}"
    )
    print(
        f"CPU time ms          p50 {pct(50, cpu_timings):.2f}  p90 {pct(90, cpu_timings):.2f}  "
        f"p99 {pct(99, cpu_timings):.2f}  (this process; excludes waiting for a busy CPU)"
    )
    print(
        f"queries per decision  mean {statistics.fmean(query_counts):.1f}  max {max(query_counts)}"
    )
    print(f"load average at the end: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    print(f"target p99 < 20 ms: {'met' if pct(99) < 20 else 'NOT met'}")


if __name__ == "__main__":
    main()
