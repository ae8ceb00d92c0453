"""Console benchmark: inbox and conversation server time, and webhook-to-socket latency.

    .venv/bin/python bench/console.py            # fill the database once, then measure
    .venv/bin/python bench/console.py --refill   # drop the data and fill again

PostgreSQL database ``ispsupport_bench`` (BENCH_DATABASE_URL) and Redis (BENCH_REDIS_URL, the
channels-redis pub/sub layer). Data: 10,000 open conversations (waiting and assigned) of 10,000
customers with 1,000,000 messages, one of them with 2,000 messages; 200 agents in one team
(every socket hears every event). Inserted with COPY.

Measured:
- inbox page (/console/?queue=waiting and queue=teams) server time, p50/p99 over 200 requests,
  in-process through the whole middleware stack (Django test client), plus a deep keyset page;
- conversation page with 2,000 messages, p50/p99;
- webhook → socket: daphne serving the app (Celery eager, Redis pub/sub layer), 200 agent
  sockets connected; the bench posts signed webhooks (a customer message in a conversation the
  team sees) and times until each socket receives the ``message.new`` event.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import random
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from common import bench_agents, copy_customers, copy_rows, fmt, setup_django, time_get

ROOT = Path(__file__).resolve().parents[1]
# A database of its own: other benchmarks fill (and truncate) ``ispsupport_bench``.
DATABASE_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/ispsupport_bench_console"
)
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/4")
setup_django(database_url=DATABASE_URL, redis_url=REDIS_URL)

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402

from accounts.models import User  # noqa: E402
from conversations.models import Conversation, Customer  # noqa: E402
from ispsupport.crypto import encrypt_str  # noqa: E402

CONVERSATIONS = 10_000
MESSAGES = 1_000_000
BIG = 2_000
AGENTS = 200
PHONE_NUMBER_ID = settings.WHATSAPP_PHONE_NUMBER_IDS[0]


# --- data -------------------------------------------------------------------------------------


def fill(refill: bool) -> None:
    call_command("migrate", verbosity=0)
    if not settings.DEBUG:
        call_command("collectstatic", interactive=False, verbosity=0)
    if Conversation.objects.count() >= CONVERSATIONS and not refill:
        print(f"data already there ({Conversation.objects.count()} conversations)")
        return
    t0 = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE conversations_liveevent, conversations_conversationnote, "
            "conversations_message, conversations_conversationevent, "
            "conversations_conversation, conversations_customer CASCADE"
        )
    team, agents = bench_agents(AGENTS)

    now = datetime.now(UTC)
    rnd = random.Random(42)
    copy_customers(range(CONVERSATIONS), now)
    customer_ids = list(Customer.objects.order_by("pk").values_list("pk", flat=True))
    day = now.strftime("%Y%m%d")
    conv_rows = []
    for i, customer_id in enumerate(customer_ids):
        opened = now - timedelta(minutes=rnd.randint(1, 60 * 20))
        waiting = i % 2 == 0
        agent = None if waiting else agents[i % len(agents)].pk
        conv_rows.append(
            (
                f"9{day}{i:06d}",
                "waiting" if waiting else "assigned",
                rnd.choice([0, 1, 1, 1, 2, 3]),
                "",
                0,
                opened,
                opened,
                opened,
                opened,
                "",
                "",
                False,
                agent,
                team.pk,
                customer_id,
                0,
                "",  # intent, escalation_reason, request_kind, request_kind_source:
                "",  # NOT NULL (blank) columns with no database default
                "",
                "",
            )
        )
    copy_rows(
        "conversations_conversation",
        [
            "protocol",
            "state",
            "priority",
            "business_number_id",
            "bot_attempts",
            "opened_at",
            "waiting_since",
            "last_customer_message_at",
            "last_message_at",
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
        ],
        conv_rows,
    )
    conv_ids = list(Conversation.objects.order_by("pk").values_list("pk", flat=True))
    big = conv_ids[0]
    per_conv = (MESSAGES - BIG) // (len(conv_ids) - 1)
    texts = [
        "Estou sem internet desde ontem",
        "Pode reiniciar o roteador?",
        "Já reiniciei",
        "Qual o número do contrato?",
        "Obrigado!",
        "A luz LOS está vermelha",
        "Vou agendar uma visita técnica",
        "Segue a segunda via do boleto",
    ]
    # Bench data only: equal texts share one token (fast to fill; real rows never do), reading
    # them costs the same decryption.
    sealed_texts = [encrypt_str(t) for t in texts]
    empty_payload = encrypt_str("{}")

    def message_rows():
        n = 0
        for cid in conv_ids:
            count = BIG if cid == big else per_conv
            start = now - timedelta(hours=20)
            for k in range(count):
                inbound = k % 2 == 0
                n += 1
                yield (
                    f"wamid.BENCH{n:09d}",
                    "in" if inbound else "out",
                    "customer" if inbound else "agent",
                    "text",
                    sealed_texts[n % len(texts)],
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                    empty_payload,
                    "received" if inbound else "delivered",
                    "",
                    "",
                    start + timedelta(seconds=k * 30),
                    cid,
                    0,
                )

    copy_rows(
        "conversations_message",
        [
            "wamid",
            "direction",
            "sender_kind",
            "type",
            "text",
            "media_id",
            "media_mime_type",
            "media_sha256",
            "media_filename",
            "media_file",
            "context_wamid",
            "payload",
            "status",
            "error_title",
            "error_details",
            "created_at",
            "conversation_id",
            "delivery_attempts",
        ],
        message_rows(),
    )
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE conversations_conversation c SET last_message_id = m.id,
                   last_message_at = m.created_at
              FROM (SELECT DISTINCT ON (conversation_id) conversation_id, id, created_at
                      FROM conversations_message ORDER BY conversation_id, created_at DESC, id DESC) m
             WHERE m.conversation_id = c.id
            """
        )
        cursor.execute("ANALYZE")
    total = Conversation.objects.count()
    print(
        f"filled {total} conversations and {MESSAGES:,} messages in {time.perf_counter() - t0:.0f} s"
    )


# --- page timings -------------------------------------------------------------------------------


def time_pages(requests: int) -> dict[str, list[float]]:
    agent = User.objects.get(username="bench000")
    client = Client()
    client.force_login(agent)
    results: dict[str, list[float]] = {}

    def measure(name: str, url: str, n: int) -> None:
        samples = time_get(client, url, n)
        results[name] = samples
        print(f"{name:<44} {fmt(samples)}")

    measure("inbox /console/?queue=waiting", "/console/?queue=waiting", requests)
    measure("inbox /console/?queue=teams", "/console/?queue=teams", requests)
    measure(
        "list partial (live refresh, 50 rows)", "/console/partials/list/?queue=waiting", requests
    )
    # A deep page: follow 40 cursors (2,000 rows in), then time that page.
    url = "/console/partials/list/?queue=waiting"
    cursor = None
    for _ in range(40):
        html = client.get(url + (f"&cursor={cursor}" if cursor else "")).content.decode()
        cursor = html.split('data-more="')[1].split('"')[0]
    measure("list partial, page 41 (keyset)", f"{url}&cursor={cursor}", requests)
    big = Conversation.objects.order_by("pk").first()
    # The big conversation belongs to an agent; a supervisor-like admin view is the agent's own.
    Conversation.objects.filter(pk=big.pk).update(assigned_agent=agent, state="assigned")
    measure("conversation page, 2,000 messages", f"/console/c/{big.pk}/", min(requests, 100))
    return results


# --- webhook → socket -----------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _session_cookie(user: User) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies[settings.SESSION_COOKIE_NAME].value


def _signed(conversation: Conversation, wamid: str) -> tuple[bytes, str]:
    customer = conversation.customer
    body = json.dumps(
        {
            "object": "whatsapp_business_account",
            "entry": [
                {
                    "id": "1",
                    "changes": [
                        {
                            "field": "messages",
                            "value": {
                                "messaging_product": "whatsapp",
                                "metadata": {
                                    "display_phone_number": "5511900000001",
                                    "phone_number_id": PHONE_NUMBER_ID,
                                },
                                "contacts": [
                                    {"profile": {"name": customer.name}, "wa_id": customer.wa_id}
                                ],
                                "messages": [
                                    {
                                        "from": customer.wa_id,
                                        "id": wamid,
                                        "timestamp": str(int(time.time())),
                                        "type": "text",
                                        "text": {"body": "Ainda sem sinal"},
                                    }
                                ],
                            },
                        }
                    ],
                }
            ],
        }
    ).encode()
    signature = (
        "sha256="
        + hmac.new(settings.WHATSAPP_APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
    )
    return body, signature


async def _socket_run(
    port: int, cookies: list[str], posts: list[tuple[bytes, str]]
) -> tuple[list[float], list[float]]:
    import websockets

    sockets = []
    for cookie in cookies:
        ws = await websockets.connect(
            f"ws://127.0.0.1:{port}/ws/console/",
            additional_headers={
                "Cookie": f"{settings.SESSION_COOKIE_NAME}={cookie}",
                "Origin": f"http://127.0.0.1:{port}",
            },
            max_size=2**20,
            open_timeout=20,
        )
        ready = json.loads(await ws.recv())
        assert ready["type"] == "ready", ready
        sockets.append(ws)
    latencies: list[float] = []
    post_times: list[float] = []
    loop = asyncio.get_running_loop()

    def post(body: bytes, signature: str) -> None:
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/webhooks/whatsapp/",
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", "X-Hub-Signature-256": signature},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 200

    async def wait_event(ws) -> float:
        while True:
            message = json.loads(await asyncio.wait_for(ws.recv(), timeout=15))
            if message.get("type") == "event" and message.get("kind") == "message.new":
                return time.perf_counter()

    for body, signature in posts:
        waiters = [asyncio.create_task(wait_event(ws)) for ws in sockets]
        started = time.perf_counter()
        await loop.run_in_executor(None, post, body, signature)
        post_times.append((time.perf_counter() - started) * 1000)
        arrivals = await asyncio.gather(*waiters)
        latencies.extend((t - started) * 1000 for t in arrivals)
        await asyncio.sleep(0.05)
    for ws in sockets:
        await ws.close()
    return latencies, post_times


def time_sockets(webhooks: int, sockets: int) -> dict[str, list[float]]:
    agents = list(User.objects.filter(username__startswith="bench").order_by("username")[:sockets])
    cookies = [_session_cookie(agent) for agent in agents]
    targets = list(
        Conversation.objects.filter(state="waiting").select_related("customer")[:webhooks]
    )
    run = uuid.uuid4().hex[:8]
    posts = [_signed(conv, f"wamid.BENCHWS{run}{i:05d}") for i, conv in enumerate(targets)]
    port = _free_port()
    env = dict(os.environ)
    env.update(
        DATABASE_URL=DATABASE_URL,
        REDIS_URL=REDIS_URL,
        CELERY_TASK_ALWAYS_EAGER="1",
        LOG_LEVEL="WARNING",
        DB_POOL_MAX_SIZE="20",
    )
    log = open(ROOT / "var" / "bench-daphne.log", "wb")  # noqa: SIM115
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "daphne",
            "-b",
            "127.0.0.1",
            "-p",
            str(port),
            "ispsupport.asgi:application",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("daphne did not start; see var/bench-daphne.log") from None
                time.sleep(0.2)
        latencies, post_times = asyncio.run(_socket_run(port, cookies, posts))
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)  # 200 sockets close: 200 presence changes to write
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
    print(f"{'webhook POST (store + process, eager)':<44} {fmt(post_times)}")
    print(f"{'webhook POST → event on socket (' + str(sockets) + ' sockets)':<44} {fmt(latencies)}")
    return {"post": post_times, "socket": latencies}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--refill", action="store_true")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--sockets", type=int, default=AGENTS)
    parser.add_argument("--webhooks", type=int, default=100)
    parser.add_argument("--skip-sockets", action="store_true")
    parser.add_argument("--skip-pages", action="store_true")
    args = parser.parse_args()
    (ROOT / "var").mkdir(exist_ok=True)
    print(
        f"database {DATABASE_URL.rsplit('/', 1)[-1]} · redis {REDIS_URL} · channel layer "
        f"{settings.CHANNEL_LAYERS['default']['BACKEND'].rsplit('.', 1)[-1]} · "
        f"DEBUG {settings.DEBUG} (the banner above is from reading the development secrets)"
    )
    fill(args.refill)
    if not args.skip_pages:
        time_pages(args.requests)
    if not args.skip_sockets:
        time_sockets(args.webhooks, args.sockets)


if __name__ == "__main__":
    main()
