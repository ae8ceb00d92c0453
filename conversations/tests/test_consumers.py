"""The console socket: who may connect, who hears what, and catching up after a reconnect.

Runs on the real channels-redis pub/sub layer when REDIS_URL is set, in-memory otherwise. The
scenarios run inside ``async_to_sync`` so the database work of the consumer and of the
services happens on the test's thread (inside the test transaction).
"""

from __future__ import annotations

from datetime import timedelta

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
    """Channels closes "old" database connections around every database call; inside a test
    wrapped in one transaction that would close the test's own connection on PostgreSQL."""
    import channels.db

    monkeypatch.setattr(channels.db, "close_old_connections", lambda: None)


def _headers(user=None, origin: bytes = b"http://testserver") -> list[tuple[bytes, bytes]]:
    headers = [(b"origin", origin)]
    if user is not None:
        client = Client()
        login(client, user)
        cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
        headers.append((b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode()))
    return headers


async def _socket(user=None, **kwargs) -> WebsocketCommunicator:
    headers = await sync_to_async(_headers)(user, **kwargs)
    return WebsocketCommunicator(application, "/ws/console/", headers=headers)


async def _open(user) -> tuple[WebsocketCommunicator, dict]:
    socket = await _socket(user)
    connected, _ = await socket.connect(timeout=3)
    assert connected
    ready = await socket.receive_json_from(timeout=3)
    assert ready["type"] == "ready"
    return socket, ready


async def _next_event(socket: WebsocketCommunicator, kind: str | None = None) -> dict:
    while True:
        message = await socket.receive_json_from(timeout=3)
        if message["type"] == "event" and (kind is None or message["kind"] == kind):
            return message


def _inbound(conversation: Conversation, wamid: str, capture) -> int:
    with capture(execute=True):
        message, created = services.message_record_inbound(
            conversation=conversation,
            wamid=wamid,
            type="text",
            timestamp=timezone.now(),
            text="Minha internet caiu",
        )
    assert created
    return message.pk


def test_anonymous_socket_is_refused():
    async def scenario():
        socket = await _socket()
        connected, code = await socket.connect(timeout=3)
        assert not connected
        assert code == 4403

    async_to_sync(scenario)()


def test_dpo_socket_is_refused(dpo):
    async def scenario():
        socket = await _socket(dpo)
        connected, code = await socket.connect(timeout=3)
        assert not connected
        assert code == 4403

    async_to_sync(scenario)()


def test_socket_from_a_foreign_origin_is_refused(agent):
    async def scenario():
        socket = await _socket(agent, origin=b"https://evil.example")
        connected, _ = await socket.connect(timeout=3)
        assert not connected

    async_to_sync(scenario)()


def test_inbound_message_reaches_the_team_socket_and_not_the_other_team(
    agent, other_agent, team_support, django_capture_on_commit_callbacks
):
    conversation = ConversationFactory(
        team=team_support, state=Conversation.State.WAITING, waiting_since=timezone.now()
    )

    async def scenario():
        support, _ = await _open(agent)
        billing, _ = await _open(other_agent)
        message_id = await sync_to_async(_inbound)(
            conversation, "wamid.live1", django_capture_on_commit_callbacks
        )
        event = await _next_event(support, "message.new")
        assert event["conversation_id"] == conversation.pk
        assert event["data"]["message_id"] == message_id
        assert event["seq"] > 0
        assert "Minha internet" not in str(event)  # events never carry customer text
        assert await billing.receive_nothing(timeout=0.5)
        await support.disconnect()
        await billing.disconnect()

    async_to_sync(scenario)()


def test_assigned_agent_outside_the_team_hears_their_conversation(
    agent, other_agent, team_billing, django_capture_on_commit_callbacks
):
    conversation = ConversationFactory(team=team_billing, state=Conversation.State.WAITING)

    async def scenario():
        socket, _ = await _open(agent)
        await sync_to_async(_inbound)(
            conversation, "wamid.before", django_capture_on_commit_callbacks
        )
        assert await socket.receive_nothing(timeout=0.4)

        def transfer_to_agent():
            with django_capture_on_commit_callbacks(execute=True):
                services.conversation_assign(conversation=conversation, agent=other_agent)
                # a supervisor moves it to the support agent; billing stays the team
                conversation.refresh_from_db()
                Conversation.objects.filter(pk=conversation.pk).update(assigned_agent=agent)

        await sync_to_async(transfer_to_agent)()
        await sync_to_async(_inbound)(
            conversation, "wamid.after", django_capture_on_commit_callbacks
        )
        event = await _next_event(socket, "message.new")
        assert event["conversation_id"] == conversation.pk
        await socket.disconnect()

    async_to_sync(scenario)()


def test_supervisor_hears_both_teams_and_presence(
    supervisor, agent, other_agent, team_support, team_billing, django_capture_on_commit_callbacks
):
    billing_conv = ConversationFactory(team=team_billing, state=Conversation.State.WAITING)

    async def scenario():
        socket, _ = await _open(supervisor)
        await sync_to_async(_inbound)(billing_conv, "wamid.sup", django_capture_on_commit_callbacks)
        event = await _next_event(socket, "message.new")
        assert event["conversation_id"] == billing_conv.pk

        def go_away():
            with django_capture_on_commit_callbacks(execute=True):
                services.agent_set_presence(user=agent, presence="away")

        await sync_to_async(go_away)()
        presence = await _next_event(socket, "presence")
        assert presence["data"] == {"user_id": str(agent.pk), "presence": "away"}
        await socket.disconnect()

    async_to_sync(scenario)()


def test_agent_does_not_hear_presence(agent, other_agent, django_capture_on_commit_callbacks):
    async def scenario():
        socket, _ = await _open(agent)

        def go_away():
            with django_capture_on_commit_callbacks(execute=True):
                services.agent_set_presence(user=other_agent, presence="away")

        await sync_to_async(go_away)()
        assert await socket.receive_nothing(timeout=0.4)
        await socket.disconnect()

    async_to_sync(scenario)()


def test_reconnect_with_last_sequence_receives_missed_events(
    agent, other_agent, team_support, team_billing, django_capture_on_commit_callbacks
):
    conversation = ConversationFactory(team=team_support, state=Conversation.State.WAITING)
    foreign = ConversationFactory(team=team_billing, state=Conversation.State.WAITING)

    async def scenario():
        socket, _ = await _open(agent)
        await sync_to_async(_inbound)(
            conversation, "wamid.seen", django_capture_on_commit_callbacks
        )
        seen = await _next_event(socket, "message.new")
        await socket.disconnect()

        # While the agent is away: two messages in their team, one in another team.
        missed_1 = await sync_to_async(_inbound)(
            conversation, "wamid.miss1", django_capture_on_commit_callbacks
        )
        await sync_to_async(_inbound)(foreign, "wamid.foreign", django_capture_on_commit_callbacks)
        missed_2 = await sync_to_async(_inbound)(
            conversation, "wamid.miss2", django_capture_on_commit_callbacks
        )

        socket, _ = await _open(agent)
        await socket.send_json_to({"type": "resume", "since": seen["seq"]})
        while True:
            reply = await socket.receive_json_from(timeout=3)
            if reply["type"] == "catchup":
                break
        assert reply["resync"] is False
        fresh = [e for e in reply["events"] if e["seq"] > seen["seq"]]
        assert [e["data"]["message_id"] for e in fresh] == [missed_1, missed_2]
        assert all(e["conversation_id"] == conversation.pk for e in reply["events"])
        await socket.disconnect()

    async_to_sync(scenario)()


def test_resume_from_a_sequence_older_than_the_window_asks_for_resync(
    agent, team_support, django_capture_on_commit_callbacks
):
    conversation = ConversationFactory(team=team_support, state=Conversation.State.WAITING)
    for n in range(3):
        _inbound(conversation, f"wamid.old{n}", django_capture_on_commit_callbacks)
    from conversations.models import LiveEvent

    first = LiveEvent.objects.order_by("pk").first()
    LiveEvent.objects.filter(pk__lt=first.pk + 2).update(
        created_at=timezone.now() - timedelta(days=2)
    )
    services.live_events_prune()

    async def scenario():
        socket, _ = await _open(agent)
        await socket.send_json_to({"type": "resume", "since": first.pk})
        reply = await socket.receive_json_from(timeout=3)
        assert reply == {"type": "catchup", "events": [], "resync": True}
        await socket.disconnect()

    async_to_sync(scenario)()


def test_typing_warns_the_other_agent_not_the_typist(
    agent, supervisor, team_support, django_capture_on_commit_callbacks
):
    conversation = ConversationFactory(
        team=team_support, state=Conversation.State.ASSIGNED, assigned_agent=agent
    )

    async def scenario():
        typist, _ = await _open(agent)
        watcher, _ = await _open(supervisor)
        await typist.send_json_to({"type": "typing", "conversation": conversation.pk})
        event = await _next_event(watcher, "typing")
        assert event["conversation_id"] == conversation.pk
        assert event["data"]["user_id"] == str(agent.pk)
        assert event["seq"] is None
        assert await typist.receive_nothing(timeout=0.4)
        await typist.disconnect()
        await watcher.disconnect()

    async_to_sync(scenario)()


def test_typing_on_a_conversation_the_agent_cannot_see_is_ignored(agent, other_agent, team_billing):
    conversation = ConversationFactory(team=team_billing, state=Conversation.State.WAITING)

    async def scenario():
        intruder, _ = await _open(agent)
        billing, _ = await _open(other_agent)
        await intruder.send_json_to({"type": "typing", "conversation": conversation.pk})
        assert await billing.receive_nothing(timeout=0.5)
        await intruder.send_json_to({"type": "typing", "conversation": "x"})
        await intruder.send_to(text_data="not json")
        assert await intruder.receive_nothing(timeout=0.2)
        await intruder.disconnect()
        await billing.disconnect()

    async_to_sync(scenario)()


def test_connecting_sets_online_and_closing_the_last_socket_sets_offline(agent):
    agent.presence = "offline"
    agent.save(update_fields=["presence"])

    async def scenario():
        first, _ = await _open(agent)
        second, _ = await _open(agent)
        await sync_to_async(agent.refresh_from_db)()
        assert agent.presence == "online"
        await first.disconnect()
        await sync_to_async(agent.refresh_from_db)()
        assert agent.presence == "online"  # another tab is still open
        await second.disconnect()
        await sync_to_async(agent.refresh_from_db)()
        assert agent.presence == "offline"

    async_to_sync(scenario)()


def test_heartbeat_away_and_back(agent):
    async def scenario():
        socket, _ = await _open(agent)
        await socket.send_json_to({"type": "heartbeat", "state": "away"})
        assert await socket.receive_nothing(timeout=0.3)
        await sync_to_async(agent.refresh_from_db)()
        assert agent.presence == "away"
        await socket.send_json_to({"type": "heartbeat", "state": "online"})
        assert await socket.receive_nothing(timeout=0.3)
        await sync_to_async(agent.refresh_from_db)()
        assert agent.presence == "online"
        await socket.disconnect()

    async_to_sync(scenario)()


def _session_hash(socket: WebsocketCommunicator) -> str:
    cookie = dict(socket.scope["headers"])[b"cookie"].decode().split("=", 1)[1]
    from accounts.services import hash_key

    return hash_key(cookie)


def test_an_admin_ending_a_users_sessions_closes_their_open_sockets(
    agent, admin_member, django_capture_on_commit_callbacks
):
    """Issue 6: an admin ends every session of a user and that user's open WebSockets close
    within seconds (each socket belongs to its own log-in); a reconnect is refused."""
    from accounts.models import UserSession

    async def scenario():
        laptop, _ = await _open(agent)
        phone, _ = await _open(agent)

        def end_all():
            admin_client = Client()
            login(admin_client, admin_member)
            with django_capture_on_commit_callbacks(execute=True):
                return admin_client.post(
                    "/admin/accounts/user/",
                    {"action": "end_all_sessions", "_selected_action": [str(agent.pk)]},
                )

        response = await sync_to_async(end_all)()
        assert response.status_code == 302
        for socket in (laptop, phone):
            closed = await socket.receive_output(timeout=3)
            assert closed == {"type": "websocket.close", "code": 4401}
        assert not await sync_to_async(
            UserSession.objects.filter(user=agent, ended_at__isnull=True).exists
        )()

        again = WebsocketCommunicator(application, "/ws/console/", headers=laptop.scope["headers"])
        connected, code = await again.connect(timeout=3)
        assert (connected, code) == (False, 4403)

    async_to_sync(scenario)()


def test_ending_one_session_closes_only_its_socket(agent, django_capture_on_commit_callbacks):
    """The user ends their phone's session from /accounts/sessions/: the phone's socket closes,
    the laptop's socket (another log-in) stays open and keeps receiving."""
    from accounts.models import UserSession

    async def scenario():
        laptop, _ = await _open(agent)
        phone, _ = await _open(agent)
        phone_hash = _session_hash(phone)

        def end_phone():
            record = UserSession.objects.get(key_hash=phone_hash)
            laptop_client = Client()
            laptop_client.cookies[settings.SESSION_COOKIE_NAME] = (
                dict(laptop.scope["headers"])[b"cookie"].decode().split("=", 1)[1]
            )
            with django_capture_on_commit_callbacks(execute=True):
                return laptop_client.post(f"/accounts/sessions/{record.pk}/end/")

        response = await sync_to_async(end_phone)()
        assert response.status_code == 302
        assert await phone.receive_output(timeout=3) == {"type": "websocket.close", "code": 4401}
        assert await laptop.receive_nothing(timeout=0.5)
        await laptop.send_json_to({"type": "resume", "since": 0})
        assert (await laptop.receive_json_from(timeout=3))["type"] == "catchup"
        await laptop.disconnect()

    async_to_sync(scenario)()


def test_an_idle_session_held_only_by_its_socket_ends_and_the_socket_closes(
    agent, django_capture_on_commit_callbacks
):
    """A client that only holds the WebSocket makes no request for the middleware to end: the
    beat sweep ends its session after the idle timeout and the socket closes; the other
    log-in, still in use, stays open."""
    from datetime import timedelta

    from django.utils import timezone

    from accounts.models import UserSession
    from accounts.tasks import end_stale_sessions

    async def scenario():
        laptop, _ = await _open(agent)
        phone, _ = await _open(agent)
        phone_hash = _session_hash(phone)

        def sweep():
            idle_for = timedelta(minutes=settings.SESSION_IDLE_TIMEOUT_MINUTES + 2)
            UserSession.objects.filter(key_hash=phone_hash).update(
                last_seen_at=timezone.now() - idle_for
            )
            with django_capture_on_commit_callbacks(execute=True):
                return end_stale_sessions.delay().get()

        assert await sync_to_async(sweep)() == {"expired": 0, "idle": 1}
        assert await phone.receive_output(timeout=3) == {"type": "websocket.close", "code": 4401}
        assert await laptop.receive_nothing(timeout=0.5)
        record = await sync_to_async(UserSession.objects.get)(key_hash=phone_hash)
        assert record.end_reason == UserSession.EndReason.IDLE
        await laptop.disconnect()

    async_to_sync(scenario)()


def test_a_session_past_its_maximum_age_ends_even_while_in_use(
    agent, django_capture_on_commit_callbacks
):
    from datetime import timedelta

    from django.utils import timezone

    from accounts.models import UserSession
    from accounts.tasks import end_stale_sessions

    async def scenario():
        socket, _ = await _open(agent)
        key_hash = _session_hash(socket)

        def sweep():
            UserSession.objects.filter(key_hash=key_hash).update(
                created_at=timezone.now() - timedelta(seconds=settings.SESSION_COOKIE_AGE + 60)
            )
            with django_capture_on_commit_callbacks(execute=True):
                return end_stale_sessions.delay().get()

        assert await sync_to_async(sweep)() == {"expired": 1, "idle": 0}
        assert await socket.receive_output(timeout=3) == {"type": "websocket.close", "code": 4401}

    async_to_sync(scenario)()
