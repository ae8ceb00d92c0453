"""Two agents in real Chromium against the real ASGI server (daphne) and the Graph simulator.

The app runs in a subprocess on a temporary SQLite file (embedded default: in-memory channel
layer, Celery eager), on an ephemeral port; the Graph API base URL and the simulator's webhook
target both point at that server. The test posts a signed webhook like Meta does and watches
both agents' screens. Screenshots go to ``test-output/``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium")
ROOT = Path(__file__).resolve().parents[2]
OUTPUT = ROOT / "test-output"
APP_SECRET = "dev-app-secret"  # the DEBUG default, matching the simulator
PHONE_NUMBER_ID = "100000000000001"
CUSTOMER = "5511987650000"
PASSWORD = "senha-do-navegador-2026"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install chromium)"
    ),
]

SETUP = f"""
from django.contrib.auth.models import Group
from accounts.models import Team, User
team, _ = Team.objects.get_or_create(slug="suporte", defaults={{"name": "Suporte técnico"}})
for username, first in (("ana", "Ana"), ("bruno", "Bruno")):
    user = User.objects.create_user(
        username=username, email=f"{{username}}@example.test", password="{PASSWORD}",
        first_name=first, last_name="Atendente",
    )
    user.groups.add(Group.objects.get(name="agent"))
    user.teams.add(team)
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@pytest.fixture(scope="module")
def live_app(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("browser-app")
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "REDIS_URL", "CHANNEL_REDIS_URL", "CACHE_REDIS_URL"}
        and not key.startswith(("PYTEST", "CELERY_BROKER"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE="ispsupport.settings",
        DEBUG="1",
        SQLITE_PATH=str(tmp / "db.sqlite3"),
        MEDIA_ROOT=str(tmp / "media"),
        WHATSAPP_API_BASE_URL=f"{base}/simulator/graph",
        SIMULATOR_WEBHOOK_URL=f"{base}/webhooks/whatsapp/",
        AUTO_ASSIGN="0",  # both agents must see it waiting; agent 1 claims it by hand
        PYTHONUNBUFFERED="1",
    )
    python = sys.executable
    subprocess.run(
        [python, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True
    )
    subprocess.run([python, "manage.py", "shell", "-c", SETUP], cwd=ROOT, env=env, check=True)
    log = open(tmp / "daphne.log", "wb")  # noqa: SIM115 - closed below
    server = subprocess.Popen(
        [python, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "ispsupport.asgi:application"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if _get(f"{base}/healthz", timeout=1)[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError((tmp / "daphne.log").read_text()[-3000:])
            time.sleep(0.2)
        yield base
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def _signed_webhook(base: str, text: str, wamid: str) -> None:
    body = json.dumps(
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
                                    "display_phone_number": "5511900000001",
                                    "phone_number_id": PHONE_NUMBER_ID,
                                },
                                "contacts": [
                                    {"profile": {"name": "Cliente do Navegador"}, "wa_id": CUSTOMER}
                                ],
                                "messages": [
                                    {
                                        "from": CUSTOMER,
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
    signature = "sha256=" + hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
    request = urllib.request.Request(
        f"{base}/webhooks/whatsapp/",
        data=body,
        headers={"Content-Type": "application/json", "X-Hub-Signature-256": signature},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


def _login(page, base: str, username: str) -> None:
    page.goto(f"{base}/accounts/login/?next=/console/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("form [type=submit]")
    page.wait_for_url(f"{base}/console/**")
    page.wait_for_selector("#conn[data-state=open]", timeout=5000)


def test_two_agents_live_queue_claim_reply_and_ticks(live_app):
    from playwright.sync_api import sync_playwright

    OUTPUT.mkdir(exist_ok=True)
    base = live_app
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        try:
            ana = browser.new_context(
                viewport={"width": 1440, "height": 900}, locale="pt-BR"
            ).new_page()
            bruno = browser.new_context(
                viewport={"width": 1440, "height": 900}, locale="pt-BR"
            ).new_page()
            _login(ana, base, "ana")
            _login(bruno, base, "bruno")
            assert ana.locator("#rows .row").count() == 0

            # A customer asks for a person: Meta posts the signed webhook; the bot escalates.
            started = time.monotonic()
            _signed_webhook(base, "Oi, quero falar com um atendente por favor", "wamid.BROWSER0001")
            answered = time.monotonic()
            row_selector = "#rows .row"
            ana.wait_for_selector(row_selector, timeout=2000)
            bruno.wait_for_selector(row_selector, timeout=2000)
            shown = time.monotonic()
            print(
                f"webhook answered in {answered - started:.3f}s; rows shown {shown - answered:.3f}s later"
            )
            assert shown - started < 2.0  # both waiting queues, no reload
            row_id = ana.locator(row_selector).first.get_attribute("data-id")
            assert "Cliente do Navegador" in ana.locator(f"#row-{row_id}").inner_text()
            bruno.screenshot(path=str(OUTPUT / "console-inbox.png"))

            # Ana opens and claims it: it leaves Bruno's waiting queue.
            ana.click(f"#row-{row_id} a")
            ana.wait_for_selector("#claim-btn")
            ana.click("#claim-btn")
            bruno.wait_for_selector(f"#row-{row_id}", state="detached", timeout=2000)
            ana.wait_for_selector('#conv-reply[data-mode="free"]', timeout=3000)

            # Ana replies: the Graph simulator receives the send.
            reply = "Olá! Sou a Ana, vou verificar sua conexão agora."
            ana.fill("#reply-text", reply)
            ana.click("#reply-form [type=submit]")
            deadline = time.monotonic() + 5
            delivered_to_phone = False
            while time.monotonic() < deadline and not delivered_to_phone:
                status, body = _get(f"{base}/simulator/api/thread?wa_id={CUSTOMER}")
                thread = json.loads(body) if status == 200 else {}
                delivered_to_phone = reply in json.dumps(thread, ensure_ascii=False)
                time.sleep(0.2)
            assert delivered_to_phone, "the simulator never received the reply"

            # The simulator posts "sent" then "delivered": the tick turns without a reload.
            bubble = ana.locator(".msg.out", has_text=reply)
            bubble.locator(".ticks-delivered, .ticks-read").wait_for(timeout=8000)
            ana.screenshot(path=str(OUTPUT / "console-conversation.png"))
        finally:
            browser.close()
