"""One request id from Meta's webhook POST to the Celery tasks' log lines and the console event.

The log lines are read from the real console handler with the production JSON formatter
(``observability.json_log``): what an operator would grep for.
"""

from __future__ import annotations

import json
import logging
import re
import socket
import urllib.request

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from celery import Celery
from celery.contrib.testing.worker import start_worker
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client, override_settings

from conversations.models import LiveEvent
from conversations.tests.conftest import isolated_channel_layer, login  # noqa: F401
from ispsupport import requestid
from ispsupport.asgi import application  # imported first: it sets up Django (and logging) again
from ispsupport.tests.observability import Samples, json_log, scrape
from whatsapp.tasks.inbound import process_pending_webhook_events
from whatsapp.testing import envelope, signed_post, text_message

pytestmark = pytest.mark.django_db


def _webhook_body(wa_id: str = "5511987654321") -> bytes:
    return json.dumps(envelope(messages=[text_message(wa_id=wa_id)])).encode()


def test_a_well_formed_request_id_is_kept_and_answered():
    response = Client().get("/healthz", HTTP_X_REQUEST_ID="lb-7f3a.9_x")
    assert response["X-Request-ID"] == "lb-7f3a.9_x"


@pytest.mark.parametrize("header", [None, "", "has spaces", "x" * 65, "ção", "a;b"])
def test_a_missing_or_malformed_request_id_is_replaced_by_a_fresh_one(header):
    extra = {} if header is None else {"HTTP_X_REQUEST_ID": header}
    response = Client().get("/healthz", **extra)
    assert re.fullmatch(r"[0-9a-f]{32}", response["X-Request-ID"])


def test_the_webhooks_lean_wsgi_path_carries_the_id_too():
    from django.core.handlers.wsgi import WSGIHandler
    from django.test.client import RequestFactory

    from whatsapp.wsgi import WebhookFastPath

    app = WebhookFastPath(WSGIHandler())
    environ = RequestFactory().get("/webhooks/whatsapp/", HTTP_X_REQUEST_ID="meta-req-1").environ
    captured: dict = {}
    app(environ, lambda status, headers: captured.update(headers=dict(headers)))

    assert captured["headers"]["X-Request-ID"] == "meta-req-1"


@pytest.fixture
def _keep_the_test_connection(monkeypatch):
    import channels.db

    monkeypatch.setattr(channels.db, "close_old_connections", lambda: None)


@pytest.mark.usefixtures("isolated_channel_layer", "_keep_the_test_connection")
def test_one_customer_message_can_be_followed_from_the_webhook_to_the_agents_screen(
    agent, django_capture_on_commit_callbacks
):
    client = Client()
    login(client, agent)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    headers = [
        (b"origin", b"http://testserver"),
        (b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode()),
    ]

    def post_webhook() -> int:
        with django_capture_on_commit_callbacks(execute=True):
            return signed_post(
                Client(), _webhook_body(), HTTP_X_REQUEST_ID="meta-e2e-42"
            ).status_code

    async def scenario() -> dict:
        socket = WebsocketCommunicator(application, "/ws/console/", headers=headers)
        connected, _ = await socket.connect(timeout=3)
        assert connected
        assert (await socket.receive_json_from(timeout=3))["type"] == "ready"
        assert await sync_to_async(post_webhook)() == 200
        while True:
            event = await socket.receive_json_from(timeout=3)
            if event["type"] == "event" and event["kind"] == "message.new":
                await socket.disconnect()
                return event

    with json_log() as lines:
        event = async_to_sync(scenario)()

    # The agent's screen: the live event names the request that brought the message.
    assert event["data"]["request_id"] == "meta-e2e-42"
    # The log: every task on the way (drain the webhook, the bot, the reply's delivery).
    by_task: dict[str, set[str]] = {}
    for line in lines:
        if line.get("task"):
            by_task.setdefault(line["task"], set()).add(line["request_id"])
    assert by_task["whatsapp.process_pending_webhook_events"] == {"meta-e2e-42"}
    assert by_task["bot.handle_inbound_message"] == {"meta-e2e-42"}
    assert by_task["whatsapp.deliver_outbound_message"] == {"meta-e2e-42"}
    assert any(
        line["message"] == "webhook events processed" and line["request_id"] == "meta-e2e-42"
        for line in lines
    )


def test_events_drained_in_one_batch_keep_each_requests_id(django_capture_on_commit_callbacks):
    # Two POSTs stored while no worker runs (their commit hooks are not executed)…
    for rid, wa_id in (("req-first", "5511911111111"), ("req-second", "5511922222222")):
        response = signed_post(Client(), _webhook_body(wa_id), HTTP_X_REQUEST_ID=rid)
        assert response.status_code == 200

    # …then one worker run drains both.
    with django_capture_on_commit_callbacks(execute=True), requestid.context("the-kick"):
        process_pending_webhook_events.delay()

    # Each customer message (and the bot's answers to it) under the id of the POST it came in.
    events = LiveEvent.objects.filter(kind="message.new")
    inbound = sorted(e.data["request_id"] for e in events if e.data["direction"] == "in")
    assert inbound == ["req-first", "req-second"]
    assert {e.data["request_id"] for e in events} == {"req-first", "req-second"}


# --- Through a broker: the id travels in the task message's headers ------------------------

# A separate app (never the current one: the project's shared tasks must stay on ours) with an
# in-memory broker, served by a real worker thread; the signal receivers are the project's.
probe_app = Celery("probe", broker="memory://", backend="cache+memory://", set_as_current=False)
probe_app.conf.task_default_queue = "probe"
probe_logger = logging.getLogger("ispsupport.tests.probe")


@probe_app.task(name="probe.log_something")
def log_something() -> str:
    probe_logger.warning("probe task ran")
    return requestid.get()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def worker():
    """A real worker thread for the probe app, serving its metrics port (CELERY_METRICS_PORT)."""
    from ispsupport.celery import app

    port = _free_port()
    try:
        with (
            override_settings(CELERY_METRICS_PORT=port, CELERY_METRICS_ADDR="127.0.0.1"),
            start_worker(probe_app, pool="solo", perform_ping_check=False, loglevel="WARNING"),
        ):
            yield f"http://127.0.0.1:{port}/metrics"
    finally:
        app.set_current()  # start_worker made the probe app the current and default one
        app.set_default()


def test_a_published_task_carries_the_id_in_its_headers_to_the_worker(worker):
    before = scrape()

    with json_log() as lines:
        with requestid.context("req-through-broker"):
            result = log_something.delay()
        assert result.get(timeout=10) == "req-through-broker"

    (line,) = [line for line in lines if line["message"] == "probe task ran"]
    assert line["request_id"] == "req-through-broker"
    assert line["task"] == "probe.log_something"
    after = scrape()
    queue_wait = "ispsupport_celery_queue_wait_seconds_count"
    assert after.value(queue_wait, queue="probe") - before.value(queue_wait, queue="probe") == 1
    published = "ispsupport_celery_tasks_published_total"
    assert after.value(published, queue="probe") - before.value(published, queue="probe") == 1


def test_a_task_published_outside_any_request_gets_an_id_of_its_own(worker):
    with json_log() as lines:
        result = log_something.delay()
        rid = result.get(timeout=10)

    assert re.fullmatch(r"[0-9a-f]{32}", rid)
    (line,) = [line for line in lines if line["message"] == "probe task ran"]
    assert line["request_id"] == rid


def test_the_worker_serves_its_task_series_on_its_own_port(worker):
    assert log_something.delay().get(timeout=10)

    with urllib.request.urlopen(worker, timeout=5) as response:
        samples = Samples(response.read().decode())

    name = "ispsupport_celery_tasks_total"
    assert samples.value(name, task="probe.log_something", state="success") >= 1
    assert samples.has("ispsupport_celery_task_duration_seconds_count", task="probe.log_something")


def test_a_json_line_carries_the_request_id_and_still_no_personal_data():
    with json_log() as lines, requestid.context("req-pii-check"):
        logging.getLogger("whatsapp.inbound").warning(
            "could not reach +55 11 98765-4321", extra={"contact": "ana.souza@example.com"}
        )

    (line,) = lines
    assert line["request_id"] == "req-pii-check"
    assert "98765" not in json.dumps(line) and "ana.souza" not in json.dumps(line)
    assert "[phone]" in line["message"] and line["contact"] == "[email]"
