"""Growth benchmark: how the console, the insert path, retention, erasure, size and VACUUM
behave as ``conversations_message`` grows to 1, 5 and 20 million rows.

    .venv/bin/python bench/growth.py                 # --sizes 1,5,20 (millions), in order
    .venv/bin/python bench/growth.py --sizes 1       # one size; re-running adds nothing
    .venv/bin/python bench/growth.py --grow-only --sizes 5

PostgreSQL database ``ispsupport_growth`` (BENCH_DATABASE_URL), created and migrated when
missing; Redis db 6 (BENCH_REDIS_URL). The table grows in blocks of 1,000,000 messages, each
inserted in one transaction under the machine-wide benchmark lock (released every
``--blocks-per-lock`` blocks, default 8, under 10 minutes),
so a size is resumable: only the missing blocks are added. A block is 8,000 new customers and
about 40,000 conversations over the last two years (closed; lognormal length, mean 25
messages, interleaved in time as a real table is), texts and payloads from a pool encrypted
once (bench data: equal texts share one token; reading them costs the same decryption),
plus half as many conversations closed 731-1,090 days ago whose messages are already purged
(the steady state: service records are kept 3 years, messages 2).
Block 0 also holds the live inbox — 2,000 open conversations (1,000 waiting, 1,000 assigned)
— and two long conversations of 2,000 and 20,000 messages.

Measured at each size, under the lock, with the load average:
- inbox (/console/?queue=waiting, ?queue=teams), the conversation page of a typical closed
  conversation and of the 2,000- and 20,000-message ones: server time in-process through the
  whole middleware stack, p50/p99 (as bench/console.py);
- the insert path: the ``wamid`` uniqueness look-up and one message INSERT (ORM);
- the nightly retention purge through the real providers, on a fixed number of conversations
  made to expire (``--expired``, default 1,000, spread over the whole table);
- VACUUM after the purge (and after the growth step), n_dead_tup and index scans;
- erasure of one customer through ``erasure_run`` (the real code path, DSR and all);
- table, TOAST and index sizes, per million messages.
Results also go to var/growth-<size>M[-<tag>].json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import subprocess
import time
from datetime import UTC, datetime, timedelta

from common import (
    ROOT,
    bench_agents,
    bench_lock,
    copy_customers,
    copy_rows,
    fmt,
    pct,
    setup_django,
    time_get,
)

DATABASE_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/ispsupport_growth"
)
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/6")


def _ensure_database() -> None:
    base, name = DATABASE_URL.rsplit("/", 1)
    done = subprocess.run(
        ["createdb", f"--maintenance-db={base}/postgres", name], capture_output=True, text=True
    )
    if done.returncode and "already exists" not in done.stderr:
        raise RuntimeError(done.stderr)


_ensure_database()
setup_django(database_url=DATABASE_URL, redis_url=REDIS_URL)

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test import Client  # noqa: E402
from django.utils import timezone  # noqa: E402

from compliance import registry  # noqa: E402
from compliance.models import DataSubjectRequest  # noqa: E402
from compliance.services import erasure_run  # noqa: E402
from conversations.models import Conversation, Customer, Message  # noqa: E402
from ispsupport.crypto import encrypt_str  # noqa: E402

BLOCK = 1_000_000
CUSTOMERS_PER_BLOCK = 8_000
OPEN_WAITING = 1_000
OPEN_ASSIGNED = 1_000
LONG = (2_000, 20_000)
AGENTS = 50
HISTORY_DAYS = 720  # closed conversations spread over this many days (all inside retention)
EXPIRED_AGE_DAYS = 800  # > RETENTION_MESSAGES_DAYS (730), < service records (1095)
RECORDS_FROM_DAYS = 731

TEXTS = [
    "Oi",
    "Estou sem internet desde ontem",
    "Pode reiniciar o roteador, por favor? Desligue da tomada por 30 segundos.",
    "Já reiniciei",
    "Qual o número do contrato ou o CPF do titular?",
    "Obrigado!",
    "A luz LOS está vermelha e a PON piscando",
    "Vou agendar uma visita técnica para amanhã entre 8h e 12h, tudo bem?",
    "Segue a segunda via do boleto com vencimento no dia 10.",
    "A internet está muito lenta à noite, o Wi-Fi cai toda hora no quarto dos fundos "
    "e no celular aparece conectado sem internet.",
    "Sim",
    "Não",
    "Quero mudar o plano para 500 mega",
    "O técnico não apareceu",
    "Bom dia, tudo bem? Gostaria de saber se tem manutenção no meu bairro hoje.",
    "Resolvido, muito obrigado pela ajuda!",
]


def log(text: str) -> None:
    print(text, flush=True)


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def sql(query: str, params: list | tuple | None = None) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        return cursor.fetchall() if cursor.description else []


# --- data -------------------------------------------------------------------------------------


def _prepare() -> tuple[object, list]:
    t0 = time.perf_counter()
    call_command("migrate", verbosity=0)
    log(f"migrate: {time.perf_counter() - t0:.1f} s")
    if not settings.DEBUG and not (ROOT / "var" / "static" / "staticfiles.json").exists():
        call_command("collectstatic", interactive=False, verbosity=0)
    sql(
        "CREATE TABLE IF NOT EXISTS bench_growth_block (block int PRIMARY KEY, messages int, "
        "conversations int, seconds double precision, done_at timestamptz)"
    )
    return bench_agents(AGENTS)


def _pools() -> tuple[list[str], list[str], str]:
    texts = [encrypt_str(t) for t in TEXTS]
    payloads = [
        encrypt_str(
            json.dumps(
                {
                    "from": "5511900000000",
                    "id": "wamid.HBgNNTUxMTk5MDAwMDAwMBUCABIYFDNBRjQ5QkM0RTk0RkQ4MzQ1MEE3AA==",
                    "timestamp": "1733500000",
                    "type": "text",
                    "text": {"body": t},
                }
            )
        )
        for t in TEXTS
    ]
    return texts, payloads, encrypt_str("{}")


def _block_plan(block: int, rnd: random.Random) -> list[tuple[str, int, float]]:
    """(kind, messages, age in days) for the block's conversations; the counts add to BLOCK."""
    plan: list[tuple[str, int, float]] = []
    if block == 0:
        plan += [("long", n, 0.2) for n in LONG]
        plan += [
            ("waiting", rnd.randint(2, 12), rnd.uniform(0.0, 0.5)) for _ in range(OPEN_WAITING)
        ]
        plan += [
            ("assigned", rnd.randint(4, 30), rnd.uniform(0.0, 1.0)) for _ in range(OPEN_ASSIGNED)
        ]
    total = sum(n for _k, n, _a in plan)
    closed = 0
    while total < BLOCK:
        n = max(2, min(400, int(rnd.lognormvariate(math.log(20), 0.65))))
        n = min(n, BLOCK - total)
        plan.append(("closed", n, rnd.uniform(1.0, HISTORY_DAYS)))
        total += n
        closed += 1
    # The steady state: service records (3 years) outlive their messages (2 years), so a third
    # of the closed conversations are past the messages period, already purged.
    plan += [("record", 0, rnd.uniform(RECORDS_FROM_DAYS, 1090)) for _ in range(closed // 2)]
    return plan


CONVERSATION_COLUMNS = [
    "protocol",
    "state",
    "priority",
    "business_number_id",
    "bot_attempts",
    "opened_at",
    "waiting_since",
    "last_customer_message_at",
    "last_message_at",
    "closed_at",
    "resolution",
    "resolution_note",
    "template_required",
    "assigned_agent_id",
    "team_id",
    "customer_id",
    "unread_count",
    "intent",
    "escalation_reason",
    "request_kind",
    "request_kind_source",
    "messages_purged_at",
]


def grow_block(block: int, team, agents: list, pools) -> None:
    """Insert block ``block`` (1,000,000 messages) in one transaction."""
    texts, payloads, empty = pools
    rnd = random.Random(1000 + block)
    now = datetime.now(UTC)
    t0 = time.perf_counter()
    plan = _block_plan(block, rnd)
    with transaction.atomic():
        sql("SET LOCAL synchronous_commit = off")
        sql("SET LOCAL work_mem = '256MB'")
        first = CUSTOMERS_PER_BLOCK * block
        copy_customers(range(first, first + CUSTOMERS_PER_BLOCK), now)
        customer_ids = [
            r[0]
            for r in sql(
                "SELECT id FROM conversations_customer ORDER BY id DESC LIMIT %s",
                [CUSTOMERS_PER_BLOCK],
            )
        ][::-1]
        open_customers = iter(customer_ids)  # one open conversation per customer
        rows = []
        steps = []
        for i, (kind, n, age) in enumerate(plan):
            step = rnd.randint(20, 240) if kind != "long" else 5
            opened = now - timedelta(days=age)
            last = opened + timedelta(seconds=step * n)
            if kind == "long":
                last = now - timedelta(minutes=1)
                step = max(1, int((last - opened).total_seconds() / n))
            closed = kind in ("closed", "record")
            agent = None
            if kind in ("assigned", "long"):
                agent = agents[0].pk if kind == "long" else agents[i % len(agents)].pk
            customer = rnd.choice(customer_ids) if closed else next(open_customers)
            state = {"closed": "closed", "record": "closed", "waiting": "waiting"}.get(
                kind, "assigned"
            )
            rows.append(
                (
                    f"G{block:02d}{i:07d}",
                    state,
                    rnd.choice([0, 1, 1, 1, 2]),
                    "",
                    rnd.choice([0, 1, 2]) if closed else 0,
                    opened,
                    None if closed else opened,
                    last,
                    last,
                    last + timedelta(minutes=10) if closed else None,
                    rnd.choice(["resolved", "resolved", "resolved_by_bot", "no_response"])
                    if closed
                    else "",
                    "",
                    False,
                    agent,
                    team.pk,
                    customer,
                    0,
                    "",
                    "",
                    "",
                    "",
                    last + timedelta(days=730, minutes=10) if kind == "record" else None,
                )
            )
            steps.append((n, opened, step, agent or agents[i % len(agents)].pk))
        copy_rows("conversations_conversation", CONVERSATION_COLUMNS, rows)
        conv_ids = [
            r[0]
            for r in sql(
                "SELECT id FROM conversations_conversation ORDER BY id DESC LIMIT %s", [len(plan)]
            )
        ][::-1]
        sql(
            "CREATE TEMP TABLE growth_plan (conv_id bigint, n int, t0 timestamptz, step int, "
            "agent_id uuid) ON COMMIT DROP"
        )
        copy_rows(
            "growth_plan",
            ["conv_id", "n", "t0", "step", "agent_id"],
            ((cid, *s) for cid, s in zip(conv_ids, steps, strict=True)),
        )
        # Server-side: one INSERT … SELECT over generate_series, ordered by time so each
        # conversation's messages lie scattered over the heap as in a real table.
        sql(
            """
            INSERT INTO conversations_message (
                conversation_id, wamid, direction, sender_kind, sender_user_id, type, text,
                media_id, media_mime_type, media_sha256, media_filename, media_file,
                context_wamid, payload, status, error_title, error_details,
                whatsapp_timestamp, created_at, delivery_attempts)
            SELECT p.conv_id,
                   'wamid.HBgNNTUxMTk' || md5(p.conv_id::text || '.' || k) || 'FQIAERgS',
                   CASE WHEN k % 2 = 1 THEN 'in' ELSE 'out' END,
                   CASE WHEN k % 2 = 1 THEN 'customer' WHEN k = 2 THEN 'bot' ELSE 'agent' END,
                   CASE WHEN k % 2 = 0 AND k > 2 THEN p.agent_id END,
                   'text',
                   (%(texts)s::text[])[1 + (p.conv_id * 31 + k) %% 16],
                   '', '', '', '', '', '',
                   CASE WHEN k % 2 = 1 THEN (%(payloads)s::text[])[1 + (p.conv_id * 31 + k) %% 16]
                        ELSE %(empty)s END,
                   CASE WHEN k % 2 = 1 THEN 'received' ELSE 'read' END,
                   '', '',
                   CASE WHEN k % 2 = 1 THEN p.t0 + (k * p.step) * interval '1 second' END,
                   p.t0 + (k * p.step) * interval '1 second',
                   CASE WHEN k % 2 = 1 THEN 0 ELSE 1 END
              FROM growth_plan p CROSS JOIN LATERAL generate_series(1, p.n) AS k
             ORDER BY p.t0 + (k * p.step) * interval '1 second'
            """.replace("k % 2", "k %% 2"),
            {"texts": texts, "payloads": payloads, "empty": empty},
        )
        sql(
            """
            UPDATE conversations_conversation c SET last_message_id = m.id,
                   last_message_at = m.created_at
              FROM (SELECT DISTINCT ON (conversation_id) conversation_id, id, created_at
                      FROM conversations_message WHERE conversation_id BETWEEN %s AND %s
                     ORDER BY conversation_id, created_at DESC, id DESC) m
             WHERE m.conversation_id = c.id
            """,
            [conv_ids[0], conv_ids[-1]],
        )
        seconds = time.perf_counter() - t0
        sql(
            "INSERT INTO bench_growth_block VALUES (%s, %s, %s, %s, now())",
            [block, BLOCK, len(plan), seconds],
        )
    log(
        f"  block {block}: {BLOCK:,} messages, {len(plan):,} conversations in "
        f"{time.perf_counter() - t0:.1f} s (load {load()})"
    )


def grow_to(millions: int, team, agents: list, *, per_lock: int) -> None:
    """Add the missing blocks, ``per_lock`` blocks (each ~40 s) per hold of the lock."""
    done = {r[0] for r in sql("SELECT block FROM bench_growth_block")}
    missing = [b for b in range(millions) if b not in done]
    if not missing:
        log(f"{millions}M: data already there")
        return
    pools = _pools()
    for i in range(0, len(missing), per_lock):
        blocks = missing[i : i + per_lock]
        with bench_lock(f"growth blocks {blocks[0]}-{blocks[-1]}"):
            for block in blocks:
                grow_block(block, team, agents, pools)


# --- measurements ------------------------------------------------------------------------------


def _vacuum(label: str) -> dict:
    notices: list[str] = []
    raw = connection.connection

    def handler(diag) -> None:
        notices.append(diag.message_primary or "")

    raw.add_notice_handler(handler)
    dead = sql(
        "SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = 'conversations_message'"
    )[0][0]
    t0 = time.perf_counter()
    try:
        with connection.cursor() as cursor:
            cursor.execute("VACUUM (VERBOSE, ANALYZE) conversations_message")
    finally:
        raw.remove_notice_handler(handler)
    seconds = time.perf_counter() - t0
    scans = [n for n in notices if "index scans" in n]
    # VERBOSE's detail lines arrive as separate notices on PostgreSQL 15.
    result = {"seconds": seconds, "dead_before": dead, "notes": scans[:2]}
    log(f"{label:<48} {seconds:8.1f} s   (n_dead_tup before {dead:,})")
    return result


def _sizes(total: int) -> dict:
    row = sql(
        """
        SELECT pg_relation_size('conversations_message'),
               pg_total_relation_size('conversations_message')
                 - pg_relation_size('conversations_message') - pg_indexes_size('conversations_message'),
               pg_indexes_size('conversations_message'),
               pg_total_relation_size('conversations_message')
        """
    )[0]
    indexes = dict(
        sql(
            "SELECT indexrelname, pg_relation_size(indexrelid) FROM pg_stat_user_indexes "
            "WHERE relname = 'conversations_message' ORDER BY 2 DESC"
        )
    )
    gb = 1024**3
    result = {
        "heap_gb": row[0] / gb,
        "toast_gb": row[1] / gb,
        "indexes_gb": row[2] / gb,
        "total_gb": row[3] / gb,
        "total_gb_per_million": row[3] / gb / (total / 1e6),
        "index_mb": {k: v / 1024**2 for k, v in indexes.items()},
    }
    log(
        f"{'size: heap / toast / indexes / total':<48} {result['heap_gb']:.2f} / "
        f"{result['toast_gb']:.2f} / {result['indexes_gb']:.2f} / {result['total_gb']:.2f} GB "
        f"= {result['total_gb_per_million']:.3f} GB per million messages"
    )
    for name, mb in result["index_mb"].items():
        log(f"    {name:<56} {mb:9.1f} MB")
    return result


def _pages(agent, requests: int) -> dict:
    client = Client()
    client.force_login(agent)
    out: dict[str, list[float]] = {}

    def measure(name: str, url: str, n: int) -> None:
        samples = time_get(client, url, n)
        out[name] = samples
        log(f"{name:<48} {fmt(samples)}")

    measure("inbox /console/?queue=waiting", "/console/?queue=waiting", requests)
    measure("inbox /console/?queue=teams", "/console/?queue=teams", requests)
    long_ids = list(
        Conversation.objects.filter(protocol__in=["G000000000", "G000000001"])
        .order_by("protocol")
        .values_list("pk", flat=True)
    )
    # A typical closed conversation near the end of the table (the newest block).
    typical = (
        Conversation.objects.filter(
            state="closed", assigned_agent__isnull=True, last_message__isnull=False
        )
        .order_by("-pk")
        .values_list("pk", flat=True)[500]
    )
    n = Message.objects.filter(conversation_id=typical).count()
    measure(f"conversation page, typical ({n} messages)", f"/console/c/{typical}/", requests // 2)
    for pk, size in zip(long_ids, LONG, strict=True):
        measure(f"conversation page, {size:,} messages", f"/console/c/{pk}/", requests // 2)
    return out


def _insert_path(samples: int) -> dict:
    conv = Conversation.objects.filter(state="waiting").order_by("pk").first()
    rnd = random.Random(7)
    max_id = sql("SELECT max(id) FROM conversations_message")[0][0]
    existing = []
    while len(existing) < samples:
        row = sql("SELECT wamid FROM conversations_message WHERE id = %s", [rnd.randint(1, max_id)])
        if row and row[0][0]:
            existing.append(row[0][0])
    lookups = []
    for i, wamid in enumerate(existing):
        probe = wamid if i % 2 == 0 else f"wamid.HBgNNTUxMTkMISSING{i:08d}{rnd.random()}"
        t0 = time.perf_counter()
        Message.objects.filter(wamid=probe).exists()
        lookups.append((time.perf_counter() - t0) * 1000)
    inserts = []
    created = []
    for i in range(samples):
        t0 = time.perf_counter()
        m = Message.objects.create(
            conversation=conv,
            wamid=f"wamid.HBgNNTUxMTkGROWTH{time.time_ns()}{i:05d}{rnd.random()}",
            direction="in",
            sender_kind="customer",
            type="text",
            text="Ainda sem sinal",
            payload={"type": "text"},
            status="received",
        )
        inserts.append((time.perf_counter() - t0) * 1000)
        created.append(m.pk)
    Message.objects.filter(pk__in=created).delete()
    log(f"{'wamid look-up (exists, half hits)':<48} {fmt(lookups)}")
    log(f"{'one message INSERT (ORM, autocommit)':<48} {fmt(inserts)}")
    return {"lookup": lookups, "insert": inserts}


def _expire(count: int) -> tuple[list[int], int]:
    """Make ``count`` closed conversations, spread over the table, past the messages period."""
    total = Conversation.objects.filter(
        state="closed", closed_at__gt=timezone.now() - timedelta(days=730)
    ).count()
    stride = max(1, total // count)
    ids = [
        r[0]
        for r in sql(
            """
            SELECT id FROM (SELECT id, row_number() OVER (ORDER BY id) AS n
                              FROM conversations_conversation
                             WHERE state = 'closed' AND closed_at > now() - interval '730 days') c
             WHERE n %% %s = 0 LIMIT %s
            """,
            [stride, count],
        )
    ]
    shift = f"{EXPIRED_AGE_DAYS} days"
    with transaction.atomic():
        sql(
            "UPDATE conversations_conversation SET opened_at = opened_at - %s::interval, "
            "closed_at = now() - %s::interval, last_message_at = last_message_at - %s::interval "
            "WHERE id = ANY(%s)",
            [shift, shift, shift, ids],
        )
        sql(
            "UPDATE conversations_message SET created_at = created_at - %s::interval "
            "WHERE conversation_id = ANY(%s)",
            [shift, ids],
        )
    messages = Message.objects.filter(conversation_id__in=ids).count()
    return ids, messages


def _purge(expired: int) -> dict:
    ids, expected = _expire(expired)
    kept_sample = (
        Conversation.objects.filter(state="closed")
        .exclude(pk__in=ids)
        .order_by("-pk")
        .values_list("pk", flat=True)[:50]
    )
    kept_before = Message.objects.filter(conversation_id__in=list(kept_sample)).count()
    total_before = Message.objects.count()
    now = timezone.now()
    per_provider = {}
    counts: dict[str, int] = {}
    t_all = time.perf_counter()
    for provider in registry.providers():
        t0 = time.perf_counter()
        result = provider.purge(
            now=now, batch_size=settings.COMPLIANCE_RETENTION_BATCH_SIZE, dry_run=False
        )
        per_provider[provider.key] = time.perf_counter() - t0
        for key, value in result.items():
            counts[key] = counts.get(key, 0) + int(value)
    seconds = time.perf_counter() - t_all
    left = Message.objects.filter(conversation_id__in=ids).count()
    kept_after = Message.objects.filter(conversation_id__in=list(kept_sample)).count()
    assert counts.get("messages") == expected, (counts.get("messages"), expected)
    assert left == 0 and kept_after == kept_before, (left, kept_before, kept_after)
    assert Message.objects.count() == total_before - expected
    slowest = sorted(per_provider.items(), key=lambda kv: -kv[1])[:3]
    log(
        f"{'retention purge (all providers)':<48} {seconds:8.2f} s   {expected:,} messages of "
        f"{len(ids):,} conversations purged; slowest: "
        + ", ".join(f"{k} {v:.2f} s" for k, v in slowest)
    )
    return {
        "seconds": seconds,
        "conversations": len(ids),
        "messages": expected,
        "per_provider": per_provider,
        "counts": counts,
    }


def _erasure() -> dict:
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    # A customer of the newest block with several closed conversations.
    customer_id = sql(
        """
        SELECT customer_id FROM conversations_conversation
         WHERE state = 'closed' AND customer_id > (SELECT max(id) - 4000 FROM conversations_customer)
         GROUP BY customer_id HAVING count(*) BETWEEN 4 AND 6 ORDER BY customer_id LIMIT 1
        """
    )[0][0]
    customer = Customer.objects.get(pk=customer_id)
    conversations = customer.conversations.count()
    messages = Message.objects.filter(conversation__customer=customer).count()
    now = timezone.now()
    request = DataSubjectRequest.objects.create(
        customer=customer,
        kind=DataSubjectRequest.Kind.ERASURE,
        status=DataSubjectRequest.Status.IN_PROGRESS,
        answer_channel=DataSubjectRequest.Channel.EMAIL,
        answer_address="titular@example.test",
        due_at=now + timedelta(days=15),
        identity_verified_at=now,
    )
    t0 = time.perf_counter()
    report = erasure_run(request_id=request.pk)
    seconds = time.perf_counter() - t0
    deleted = report.deleted.get("conversations.message", 0)
    assert deleted == messages, (deleted, messages)
    assert not Message.objects.filter(conversation__customer_id=customer_id).exists()
    log(
        f"{'erasure of one customer (erasure_run)':<48} {seconds * 1000:8.1f} ms   "
        f"{conversations} conversations, {messages} messages"
    )
    return {"seconds": seconds, "conversations": conversations, "messages": messages}


def measure(millions: int, *, requests: int, samples: int, expired: int, tag: str) -> dict:
    from accounts.models import User

    agent = User.objects.get(username="bench000")
    results: dict = {"size_millions": millions}
    with bench_lock(f"growth measure {millions}M"):
        results["load_start"] = load()
        total = Message.objects.count()
        log(f"== {millions}M: {total:,} messages, load average {results['load_start']} ==")
        results["messages"] = total
        results["vacuum_after_growth"] = _vacuum("VACUUM (ANALYZE) after growth")
        results["size"] = _sizes(total)
        results["pages"] = _pages(agent, requests)
        results["insert"] = _insert_path(samples)
        results["purge"] = _purge(expired)
        results["vacuum_after_purge"] = _vacuum("VACUUM (ANALYZE) after purge")
        results["erasure"] = _erasure()
        results["load_end"] = load()
        log(f"== load average at the end {results['load_end']} ==")
    summary = {
        k: {"p50": pct(v, 50), "p99": pct(v, 99)}
        for part in ("pages", "insert")
        for k, v in results[part].items()
    }
    results["summary"] = summary
    (ROOT / "var").mkdir(exist_ok=True)
    (ROOT / "var" / f"growth-{millions}M{tag}.json").write_text(json.dumps(results, indent=1))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1,5,20", help="millions of messages, in order")
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--samples", type=int, default=200, help="look-ups and inserts")
    parser.add_argument("--expired", type=int, default=1000, help="conversations purged")
    parser.add_argument("--grow-only", action="store_true")
    parser.add_argument("--tag", default="", help="suffix of the results file")
    parser.add_argument("--blocks-per-lock", type=int, default=8, help="keep a hold < 10 min")
    parser.add_argument("--measure-only", action="store_true")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    log(
        f"database {DATABASE_URL.rsplit('/', 1)[-1]} · DEBUG {settings.DEBUG} · "
        f"load {load()} (the banner above is from reading the development secrets)"
    )
    team, agents = _prepare()
    for millions in sizes:
        if not args.measure_only:
            grow_to(millions, team, agents, per_lock=args.blocks_per_lock)
        if not args.grow_only:
            measure(
                millions,
                requests=args.requests,
                samples=args.samples,
                expired=args.expired,
                tag=f"-{args.tag}" if args.tag else "",
            )


if __name__ == "__main__":
    main()
