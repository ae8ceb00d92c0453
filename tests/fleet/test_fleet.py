"""The real fleet on this machine (``deploy.fleet``, what ``make prod-local`` runs), end to end.

nginx in front of two gunicorn web processes and a daphne ws process, one Celery worker per
queue, beat, Redis per role and the Graph API simulator standing in for Meta; PostgreSQL is the
local server (a database of its own, ``<DATABASE_URL name>_fleettest``). Everything goes through
the balancer as Meta and an agent's browser would: health, readiness, a log-in, the console's
WebSocket, a signed webhook, the bot's reply reaching "Meta", Meta's retry of the same webhook.

Runs only when PostgreSQL and Redis are configured (CI); there nginx and redis-server must be
installed (``.ci/run`` installs nginx), elsewhere their absence skips with the reason. The
whole module is bounded: start ≤ 150 s, each wait ≤ 45 s, stop ≤ 30 s per process.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import socket
import time
import uuid
from urllib.parse import urlparse

import psycopg
import pytest
import redis
import requests

from deploy.fleet import Fleet, FleetConfig, ensure_database, free_port

DATABASE_URL = os.environ.get("DATABASE_URL", "")
pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.skipif(
        not DATABASE_URL.startswith("postgres") or not os.environ.get("REDIS_URL"),
        reason="the fleet runs on PostgreSQL and Redis (DATABASE_URL, REDIS_URL)",
    ),
]

AGENT = "fleet-agente"
AGENT_PASSWORD = "fleet-agente-senha-2026"
PHONE_NUMBER_ID = "100000000000001"


def _binaries_or_skip() -> None:
    missing = [
        b
        for b in ("nginx", "redis-server")
        if not (shutil.which(b) or os.path.exists(f"/usr/sbin/{b}"))
    ]
    if missing:
        message = f"the fleet needs {', '.join(missing)} (apt-get install nginx-light redis-server)"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI installs them: a skip there would hide a broken fleet
        pytest.skip(message)


def _fleet_database_url() -> str:
    parsed = urlparse(DATABASE_URL)
    return parsed._replace(path=parsed.path.rstrip("/") + "_fleettest").geturl()


def _redis_ports() -> dict[str, int]:
    """Three free ports in 6390-6399 (the range this project's extra Redis servers use)."""
    ports: list[int] = []
    for port in range(6390, 6400):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        ports.append(port)
        if len(ports) == 3:
            return dict(zip(("cache", "broker", "channels"), ports, strict=True))
    pytest.skip("no three free ports between 6390 and 6399 for the fleet's Redis servers")


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    _binaries_or_skip()
    config = FleetConfig(
        database_url=_fleet_database_url(),
        var_dir=tmp_path_factory.mktemp("fleet"),
        balancer_port=free_port(),
        graph_port=free_port(),
        redis_ports=_redis_ports(),
        web_processes=2,
        web_workers=2,
        ws_processes=1,
        # Outside the window, the bot's escalation goes to the queue: keep it there.
        extra_env={"AUTO_ASSIGN": "0", "LOG_LEVEL": "INFO"},
    )
    ensure_database(config.database_url, fresh=True)
    running = Fleet(config)
    running.start(timeout=150)
    try:
        yield running
    finally:
        running.stop(timeout=30)


def _cookies(response: requests.Response) -> dict[str, str]:
    """Cookies from Set-Cookie, whatever their Secure flag (requests would drop those on http)."""
    found = {}
    for header in response.raw.headers.getlist("Set-Cookie"):
        name, _, rest = header.partition("=")
        found[name.strip()] = rest.split(";", 1)[0]
    return found


def _log_in(fleet: Fleet) -> str:
    """Log the agent in through the balancer; returns the session key."""
    page = requests.get(f"{fleet.url}/accounts/login/", timeout=10)
    assert page.status_code == 200
    csrf = _cookies(page)["csrftoken"]
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    response = requests.post(
        f"{fleet.url}/accounts/login/",
        data={"username": AGENT, "password": AGENT_PASSWORD, "csrfmiddlewaretoken": token},
        headers={"Cookie": f"csrftoken={csrf}"},
        allow_redirects=False,
        timeout=20,
    )
    assert response.status_code == 302, response.text[:500]
    return _cookies(response)["sessionid"]


def _webhook(wa_id: str, wamid: str, text: str) -> bytes:
    return json.dumps(
        {
            "object": "whatsapp_business_account",
            "entry": [
                {
                    "id": "102290129340398",
                    "changes": [
                        {
                            "field": "messages",
                            "value": {
                                "messaging_product": "whatsapp",
                                "metadata": {
                                    "display_phone_number": "551140040000",
                                    "phone_number_id": PHONE_NUMBER_ID,
                                },
                                "contacts": [
                                    {"profile": {"name": "Cliente Frota"}, "wa_id": wa_id}
                                ],
                                "messages": [
                                    {
                                        "from": wa_id,
                                        "id": wamid,
                                        "timestamp": str(int(time.time())),
                                        "type": "text",
                                        "text": {"body": text},
                                    }
                                ],
                            },
                        }
                    ],
                }
            ],
        }
    ).encode()


def _query(fleet: Fleet, sql: str, params: list) -> list[tuple]:
    with psycopg.connect(fleet.config.database_url, connect_timeout=5) as conn:
        return conn.execute(sql, params).fetchall()


def _wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    pytest.fail(f"not within {timeout:.0f} s: {what}")


def test_balancer_answers_health_and_readiness_from_every_web_process(fleet):
    upstreams = set()
    for _ in range(6):
        response = requests.get(f"{fleet.url}/healthz", timeout=5)
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}
        upstreams.add(response.headers["X-Fleet-Upstream"])
    # Round robin, no stickiness: both web processes answered.
    assert upstreams == {f"127.0.0.1:{port}" for port in fleet.config.web_ports}

    ready = requests.get(f"{fleet.url}/readyz", timeout=10)
    assert ready.status_code == 200, ready.text
    body = ready.json()
    assert body["failing"] == []
    for part in ("database", "cache", "broker", "channel_layer"):
        assert body["checks"][part] == "ok"


def test_webhook_reaches_the_agents_socket_and_the_bot_reply_reaches_meta(fleet):
    fleet.manage(
        "shell",
        "-c",
        "from django.contrib.auth.models import Group\n"
        "from accounts.models import User\n"
        f"u, _ = User.objects.get_or_create(username={AGENT!r})\n"
        f"u.set_password({AGENT_PASSWORD!r})\n"
        "u.save()\n"
        "u.groups.add(Group.objects.get(name='agent'))\n",
    )
    session = _log_in(fleet)
    wa_id = f"55119{uuid.uuid4().int % 10**8:08d}"
    wamid = f"wamid.FLEET{uuid.uuid4().hex.upper()}"
    body = _webhook(wa_id, wamid, "Oi, estou sem internet desde ontem")

    async def socket_sees_the_message() -> dict:
        import websockets

        async with websockets.connect(
            f"{fleet.ws_url}/ws/console/",
            additional_headers={"Cookie": f"sessionid={session}", "Origin": fleet.url},
            open_timeout=15,
        ) as ws:
            ready = json.loads(await asyncio.wait_for(ws.recv(), 15))
            assert ready["type"] == "ready"
            loop = asyncio.get_running_loop()
            status = await loop.run_in_executor(None, fleet.post_webhook, body)
            assert status == 200
            deadline = loop.time() + 45
            while True:
                message = json.loads(await asyncio.wait_for(ws.recv(), deadline - loop.time()))
                if message.get("type") == "event" and message.get("kind") == "message.new":
                    return message

    event = asyncio.run(socket_sees_the_message())
    (conversation_id,) = _query(
        fleet,
        "SELECT conversation_id FROM conversations_message WHERE wamid = %s",
        [wamid],
    )[0]
    assert event["conversation_id"] == conversation_id

    # The bot (rule-based without a Gemini key) decided in worker "ai"; its replies (greeting
    # with the protocol, then the answer) went out through worker "outbound" to the Graph
    # simulator, whose status webhooks came back through nginx.
    def replies_at_meta():
        response = requests.get(
            f"{fleet.graph_url}/simulator/api/thread", params={"wa_id": wa_id}, timeout=5
        )
        return [m["wamid"] for m in response.json()["messages"] if m["dir"] == "out"]

    def replies_delivered():
        decided = _query(
            fleet,
            "SELECT action FROM bot_botdecision d JOIN conversations_message m "
            "ON m.id = d.message_id WHERE m.wamid = %s",
            [wamid],
        )
        outbound = _query(
            fleet,
            "SELECT wamid, status FROM conversations_message "
            "WHERE conversation_id = %s AND direction = 'out' ORDER BY id",
            [conversation_id],
        )
        done = decided and outbound and all(s in ("delivered", "read") for _, s in outbound)
        return outbound if done else None

    outbound = _wait_for(replies_delivered, 45, "the bot's replies delivered to the Graph API")
    assert sorted(replies_at_meta()) == sorted(w for w, _ in outbound)

    # Meta retries the same webhook: stored once, answered once.
    assert fleet.post_webhook(body) == 200
    time.sleep(3)
    assert _query(
        fleet, "SELECT count(*) FROM conversations_message WHERE wamid = %s", [wamid]
    ) == [(1,)]
    assert len(replies_at_meta()) == len(outbound)


def test_redis_roles_have_their_policies_and_every_cache_key_a_ttl(fleet):
    cache = redis.Redis.from_url(fleet.redis_url("cache"))
    broker = redis.Redis.from_url(fleet.redis_url("broker"))
    channels = redis.Redis.from_url(fleet.redis_url("channels"))
    assert cache.config_get("maxmemory-policy")["maxmemory-policy"] == "allkeys-lru"
    assert int(cache.config_get("maxmemory")["maxmemory"]) > 0
    for server in (broker, channels):
        assert server.config_get("maxmemory-policy")["maxmemory-policy"] == "noeviction"
        assert int(server.config_get("maxmemory")["maxmemory"]) > 0

    # What the previous test's log-in, webhook, bot and reply wrote (rate limits, the ingest
    # kick, the breaker, the bot's snapshot, presence…): every key expires.
    keys = list(cache.scan_iter(count=1000))
    assert keys, "the flow above wrote nothing to the cache: this check would prove nothing"
    without_ttl = [key for key in keys if cache.ttl(key) < 0]
    assert without_ttl == []


def test_fleet_stops_cleanly_within_bounds(fleet):
    started = time.monotonic()
    outcome = fleet.stop(timeout=30)
    assert set(outcome.values()) == {"stopped"}, outcome
    assert time.monotonic() - started < 120
    with (
        pytest.raises(OSError),
        socket.create_connection(("127.0.0.1", fleet.config.balancer_port), 1),
    ):
        pass
    assert not any(fleet.is_running(name) for name in fleet.processes)
