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
import socket
import time
import uuid

import pytest
import redis
import requests

from deploy.fleet import Fleet, FleetConfig, ensure_database, free_port
from tests.fleet.support import (
    FLEET_SKIP,
    binaries_or_skip,
    create_agent,
    fleet_database_url,
    log_in,
    query,
    redis_ports,
    wait_for,
    webhook,
)

pytestmark = [pytest.mark.postgres, pytest.mark.redis, FLEET_SKIP]


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    binaries_or_skip()
    config = FleetConfig(
        database_url=fleet_database_url(),
        var_dir=tmp_path_factory.mktemp("fleet"),
        balancer_port=free_port(),
        graph_port=free_port(),
        redis_ports=redis_ports(),
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
    create_agent(fleet)
    session = log_in(fleet)
    wa_id = f"55119{uuid.uuid4().int % 10**8:08d}"
    wamid = f"wamid.FLEET{uuid.uuid4().hex.upper()}"
    body = webhook(wa_id, wamid, "Oi, estou sem internet desde ontem")

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
    (conversation_id,) = query(
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
        decided = query(
            fleet,
            "SELECT action FROM bot_botdecision d JOIN conversations_message m "
            "ON m.id = d.message_id WHERE m.wamid = %s",
            [wamid],
        )
        outbound = query(
            fleet,
            "SELECT wamid, status FROM conversations_message "
            "WHERE conversation_id = %s AND direction = 'out' ORDER BY id",
            [conversation_id],
        )
        done = decided and outbound and all(s in ("delivered", "read") for _, s in outbound)
        return outbound if done else None

    outbound = wait_for(replies_delivered, 45, "the bot's replies delivered to the Graph API")
    assert sorted(replies_at_meta()) == sorted(w for w, _ in outbound)

    # Meta retries the same webhook: stored once, answered once.
    assert fleet.post_webhook(body) == 200
    time.sleep(3)
    stored = query(fleet, "SELECT count(*) FROM conversations_message WHERE wamid = %s", [wamid])
    assert stored == [(1,)]
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
