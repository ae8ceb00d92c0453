"""The dashboard's live updates: supervisors subscribe on the console socket and hear when a
conversation changes state; agents may not subscribe.

Runs on the real channels-redis layer when REDIS_URL is set (see test_consumers.py).
"""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client
from django.utils import timezone

from conversations import services
from conversations.models import Conversation
from conversations.tests.conftest import login
from conversations.tests.factories import ConversationFactory
from ispsupport.asgi import application

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("isolated_channel_layer")]


@pytest.fixture(autouse=True)
def _keep_the_test_connection(monkeypatch):
    import channels.db

    monkeypatch.setattr(channels.db, "close_old_connections", lambda: None)


def _headers(user) -> list[tuple[bytes, bytes]]:
    client = Client()
    login(client, user)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    return [
        (b"origin", b"http://testserver"),
        (b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode()),
    ]


async def _open(user) -> WebsocketCommunicator:
    headers = await sync_to_async(_headers)(user)
    socket = WebsocketCommunicator(application, "/ws/console/", headers=headers)
    connected, _ = await socket.connect(timeout=3)
    assert connected
    assert (await socket.receive_json_from(timeout=3))["type"] == "ready"
    return socket


async def _next(socket: WebsocketCommunicator, predicate) -> dict:
    while True:
        message = await socket.receive_json_from(timeout=3)
        if predicate(message):
            return message


def _close(conversation: Conversation, agent, capture) -> None:
    with capture(execute=True):
        services.conversation_close(conversation=conversation, resolution="resolved", actor=agent)


def test_a_supervisors_dashboard_hears_a_conversation_change_state(
    supervisor, agent, team_support, django_capture_on_commit_callbacks
):
    conversation = ConversationFactory(
        team=team_support, state="assigned", assigned_agent=agent, waiting_since=timezone.now()
    )

    async def scenario():
        socket = await _open(supervisor)
        await socket.send_json_to({"type": "subscribe", "topic": "dashboard"})
        subscribed = await _next(socket, lambda m: m["type"] == "subscribed")
        assert subscribed["topic"] == "dashboard"
        assert subscribed["interval"] == settings.DASHBOARD_PUSH_INTERVAL_SECONDS

        await sync_to_async(_close)(conversation, agent, django_capture_on_commit_callbacks)

        notice = await _next(
            socket, lambda m: m["type"] == "event" and m["kind"] == "dashboard.changed"
        )
        assert notice["conversation_id"] is None and notice["seq"] is None
        assert set(notice["data"]) == {"interval"}  # no figures, no ids: nothing to leak
        await socket.disconnect()

    async_to_sync(scenario)()


def test_an_agent_cannot_subscribe_to_the_dashboard(
    agent, team_support, django_capture_on_commit_callbacks
):
    conversation = ConversationFactory(team=team_support, state="assigned", assigned_agent=agent)

    async def scenario():
        socket = await _open(agent)
        await socket.send_json_to({"type": "subscribe", "topic": "dashboard"})
        refused = await _next(socket, lambda m: m["type"] == "error")
        assert refused["code"] == "forbidden"

        await sync_to_async(_close)(conversation, agent, django_capture_on_commit_callbacks)

        # The agent hears about their own conversation, never the dashboard's notice.
        kinds = []
        while not await socket.receive_nothing(timeout=0.5):
            message = await socket.receive_json_from(timeout=1)
            kinds.append(message.get("kind"))
        assert "conversation.closed" in kinds and "dashboard.changed" not in kinds
        await socket.disconnect()

    async_to_sync(scenario)()


def test_notices_are_throttled_to_one_per_interval(
    supervisor, agent, team_support, django_capture_on_commit_callbacks, settings
):
    settings.DASHBOARD_PUSH_INTERVAL_SECONDS = 60
    first = ConversationFactory(team=team_support, state="assigned", assigned_agent=agent)
    second = ConversationFactory(team=team_support, state="assigned", assigned_agent=agent)

    async def scenario():
        socket = await _open(supervisor)
        await socket.send_json_to({"type": "subscribe", "topic": "dashboard"})
        await _next(socket, lambda m: m["type"] == "subscribed")
        await sync_to_async(_close)(first, agent, django_capture_on_commit_callbacks)
        await sync_to_async(_close)(second, agent, django_capture_on_commit_callbacks)

        notices = 0
        while not await socket.receive_nothing(timeout=0.5):
            message = await socket.receive_json_from(timeout=1)
            notices += message.get("kind") == "dashboard.changed"
        assert notices == 1
        await socket.disconnect()

    async_to_sync(scenario)()


def test_an_agent_going_away_refreshes_the_dashboard(
    supervisor, agent, django_capture_on_commit_callbacks
):
    """The agents board changes with presence: the dashboards hear it."""

    def go_away() -> None:
        with django_capture_on_commit_callbacks(execute=True):
            assert services.agent_set_presence(user=agent, presence="away")

    async def scenario():
        socket = await _open(supervisor)
        await socket.send_json_to({"type": "subscribe", "topic": "dashboard"})
        await _next(socket, lambda m: m["type"] == "subscribed")

        await sync_to_async(go_away)()

        notice = await _next(
            socket, lambda m: m["type"] == "event" and m["kind"] == "dashboard.changed"
        )
        assert set(notice["data"]) == {"interval"}
        await socket.disconnect()

    async_to_sync(scenario)()


def test_the_dpo_never_reaches_the_dashboards_socket(dpo):
    """The console's socket is closed to the DPO (4403), so no dashboard notice reaches them."""

    async def scenario():
        headers = await sync_to_async(_headers)(dpo)
        socket = WebsocketCommunicator(application, "/ws/console/", headers=headers)
        connected, code = await socket.connect(timeout=3)
        assert not connected and code == 4403

    async_to_sync(scenario)()
