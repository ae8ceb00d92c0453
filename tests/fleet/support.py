"""What the fleet tests share: skipping without the binaries, ports, log-in, Meta's webhook body.

Everything here talks to a running ``deploy.fleet.Fleet`` the way the outside world does
(through nginx, PostgreSQL, the Graph simulator's HTTP API); nothing imports the product.
"""

from __future__ import annotations

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
import requests

from deploy.fleet import Fleet

DATABASE_URL = os.environ.get("DATABASE_URL", "")
FLEET_SKIP = pytest.mark.skipif(
    not DATABASE_URL.startswith("postgres") or not os.environ.get("REDIS_URL"),
    reason="the fleet runs on PostgreSQL and Redis (DATABASE_URL, REDIS_URL)",
)

AGENT = "fleet-agente"
AGENT_PASSWORD = "fleet-agente-senha-2026"
PHONE_NUMBER_ID = "100000000000001"


def binaries_or_skip() -> None:
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


def fleet_database_url(suffix: str = "_fleettest") -> str:
    """A database of its own on the configured server: ``<DATABASE_URL name><suffix>``."""
    parsed = urlparse(DATABASE_URL)
    return parsed._replace(path=parsed.path.rstrip("/") + suffix).geturl()


def redis_ports() -> dict[str, int]:
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


def cookies(response: requests.Response) -> dict[str, str]:
    """Cookies from Set-Cookie, whatever their Secure flag (requests would drop those on http)."""
    found = {}
    for header in response.raw.headers.getlist("Set-Cookie"):
        name, _, rest = header.partition("=")
        found[name.strip()] = rest.split(";", 1)[0]
    return found


def create_agent(fleet: Fleet) -> None:
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


def log_in(fleet: Fleet) -> str:
    """Log the agent in through the balancer; returns the session key."""
    page = requests.get(f"{fleet.url}/accounts/login/", timeout=10)
    assert page.status_code == 200
    csrf = cookies(page)["csrftoken"]
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    response = requests.post(
        f"{fleet.url}/accounts/login/",
        data={"username": AGENT, "password": AGENT_PASSWORD, "csrfmiddlewaretoken": token},
        headers={"Cookie": f"csrftoken={csrf}"},
        allow_redirects=False,
        timeout=20,
    )
    assert response.status_code == 302, response.text[:500]
    return cookies(response)["sessionid"]


def new_wa_id() -> str:
    return f"55119{uuid.uuid4().int % 10**8:08d}"


def new_wamid(prefix: str = "FLEET") -> str:
    return f"wamid.{prefix}{uuid.uuid4().hex.upper()}"


def webhook(wa_id: str, wamid: str, text: str, name: str = "Cliente Frota") -> bytes:
    """Meta's envelope with one customer's text message, as the Cloud API posts it."""
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
                                "contacts": [{"profile": {"name": name}, "wa_id": wa_id}],
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


def query(fleet: Fleet, sql: str, params: list | tuple = ()) -> list[tuple]:
    with psycopg.connect(fleet.config.database_url, connect_timeout=5) as conn:
        return conn.execute(sql, params).fetchall()


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    pytest.fail(f"not within {timeout:.0f} s: {what}")
