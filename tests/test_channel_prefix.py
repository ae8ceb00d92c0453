"""CHANNEL_PREFIX: deployments sharing one Redis do not hear each other's live events.

Redis pub/sub channels are global to the server; the database number in CHANNEL_REDIS_URL does
not separate them. The prefix does (channels-redis ``prefix``).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

_PRINT_PREFIXES = """
import importlib, json, os, sys
out = []
for env in json.loads(sys.argv[1]):
    for key in ("CHANNEL_REDIS_URL", "REDIS_URL", "CHANNEL_PREFIX"):
        os.environ.pop(key, None)
    os.environ.update(env)
    import ispsupport.settings as s
    s = importlib.reload(s)
    layer = s.CHANNEL_LAYERS["default"]
    out.append([s.CHANNEL_PREFIX, layer.get("CONFIG", {}).get("prefix")])
print(json.dumps(out))
"""


def test_prefix_follows_the_database_number_unless_set():
    cases = [
        {"CHANNEL_REDIS_URL": "redis://127.0.0.1:6379/0"},
        {"CHANNEL_REDIS_URL": "redis://127.0.0.1:6379/5"},
        {"REDIS_URL": "redis://127.0.0.1:6379/3"},
        {"CHANNEL_REDIS_URL": "redis://127.0.0.1:6379/5", "CHANNEL_PREFIX": "isp-ws-cliente-b"},
        {},
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "DJANGO_"))}
    result = subprocess.run(
        [sys.executable, "-c", _PRINT_PREFIXES, json.dumps(cases)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    prefixes = json.loads(result.stdout.strip().splitlines()[-1])
    assert prefixes == [
        ["isp-ws", "isp-ws"],
        ["isp-ws-db5", "isp-ws-db5"],
        ["isp-ws-db3", "isp-ws-db3"],
        ["isp-ws-cliente-b", "isp-ws-cliente-b"],
        ["isp-ws", None],  # in-memory layer: one process, nothing to separate
    ]


@pytest.mark.redis
@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL")
def test_layers_with_different_prefixes_on_one_redis_do_not_hear_each_other():
    from channels_redis.pubsub import RedisPubSubChannelLayer

    url = os.environ["REDIS_URL"]
    run = uuid.uuid4().hex[:8]

    async def scenario() -> list[dict]:
        listener = RedisPubSubChannelLayer(hosts=[url], prefix=f"isp-ws-a-{run}")
        same = RedisPubSubChannelLayer(hosts=[url], prefix=f"isp-ws-a-{run}")
        other = RedisPubSubChannelLayer(hosts=[url], prefix=f"isp-ws-b-{run}")
        channel = await listener.new_channel()
        await listener.group_add("team.1", channel)
        heard: list[dict] = []

        async def collect() -> None:
            while True:
                heard.append(await listener.receive(channel))

        collector = asyncio.create_task(collect())
        try:
            await asyncio.sleep(0.3)  # subscribed
            await other.group_send("team.1", {"type": "event", "from": "b"})
            await same.group_send("team.1", {"type": "event", "from": "a"})
            for _ in range(50):
                if heard:
                    break
                await asyncio.sleep(0.1)
            await asyncio.sleep(0.5)  # anything else on its way arrives too
            return heard
        finally:
            collector.cancel()
            for layer in (listener, same, other):
                await layer.flush()

    heard = asyncio.run(scenario())
    # The same prefix is heard; the other deployment's event, sent first, never arrives.
    assert [m["from"] for m in heard] == ["a"]
