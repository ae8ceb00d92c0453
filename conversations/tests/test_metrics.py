"""The core's series: a conversation's life, first response and resolution, agents, sockets.

Every figure is read from ``/metrics`` before and after the real services run (their commit
hooks executed, as in production).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.db import transaction
from django.test import Client
from django.utils import timezone

from accounts.models import Presence
from conversations import metrics, services
from conversations.models import Conversation
from conversations.tests.conftest import login
from conversations.tests.factories import ConversationFactory
from ispsupport.asgi import application
from ispsupport.tests.observability import scrape

pytestmark = pytest.mark.django_db


def test_a_conversation_through_the_humans_moves_every_figure_of_its_life(
    customer, agent, team_support, django_capture_on_commit_callbacks
):
    opened = timezone.now() - timedelta(minutes=30)
    conversation = ConversationFactory(customer=customer, opened_at=opened)
    before = scrape()

    with django_capture_on_commit_callbacks(execute=True):
        services.conversation_escalate(
            conversation=conversation,
            reason="bot:asked_for_human",
            team=team_support,
            priority=Conversation.Priority.HIGH,
        )
    waiting = scrape()
    with django_capture_on_commit_callbacks(execute=True):
        services.conversation_claim(conversation=conversation, agent=agent)
        services.message_send_by_agent(conversation=conversation, agent=agent, text="Olá!")
        services.message_send_by_agent(conversation=conversation, agent=agent, text="Resolvido.")
    assigned = scrape()
    with django_capture_on_commit_callbacks(execute=True):
        services.conversation_close_by_staff(
            conversation=conversation, actor=agent, resolution="resolved", send_csat=False
        )
    after = scrape()

    def delta(name: str, **labels: str) -> float:
        return after.value(name, **labels) - before.value(name, **labels)

    assert delta("ispsupport_conversations_escalated_total", reason="bot:asked_for_human") == 1
    assert delta("ispsupport_conversations_assigned_total", reason="claim") == 1
    assert delta("ispsupport_messages_outbound_total", type="text", sender="agent") == 2
    # Only the first agent message is a first response.
    assert delta("ispsupport_conversation_first_response_seconds_count", priority="high") == 1
    assert delta("ispsupport_conversations_closed_total", resolution="resolved") == 1
    assert delta("ispsupport_conversation_duration_seconds_count", resolution="resolved") == 1
    # Opened 30 minutes ago: the duration lands above the 15-minute bucket.
    duration_sum = "ispsupport_conversation_duration_seconds_sum"
    assert delta(duration_sum, resolution="resolved") >= 30 * 60
    assert delta("ispsupport_conversation_resolution_seconds_count", resolution="resolved") == 1
    assert waiting.value("ispsupport_conversations_open", state="waiting") == 1
    assert waiting.value("ispsupport_conversations_waiting_oldest_seconds") >= 0
    assert assigned.value("ispsupport_conversations_open", state="assigned") == 1
    assert assigned.value("ispsupport_conversations_open", state="waiting") == 0
    assert after.value("ispsupport_conversations_open", state="assigned") == 0


def test_returning_and_transferring_are_counted(
    customer, agent, supervisor, team_support, team_billing, django_capture_on_commit_callbacks
):
    conversation = ConversationFactory(customer=customer, team=team_support)
    with django_capture_on_commit_callbacks(execute=True):
        services.conversation_escalate(conversation=conversation, reason="stale_message")
        services.conversation_claim(conversation=conversation, agent=agent)
    before = scrape()

    with django_capture_on_commit_callbacks(execute=True):
        services.conversation_unassign(conversation=conversation, reason="agent_offline")
        services.conversation_transfer(
            conversation=conversation, actor=supervisor, team=team_billing
        )

    after = scrape()
    returned = "ispsupport_conversations_returned_to_queue_total"
    assert (
        after.value(returned, reason="agent_offline")
        - before.value(returned, reason="agent_offline")
        == 1
    )
    transferred = "ispsupport_conversations_transferred_total"
    assert after.value(transferred) - before.value(transferred) == 1


def test_a_rolled_back_transition_counts_nothing(customer, django_capture_on_commit_callbacks):
    conversation = ConversationFactory(customer=customer)
    before = scrape()

    with (
        django_capture_on_commit_callbacks(execute=True),
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        services.conversation_escalate(conversation=conversation, reason="bot:asked_for_human")
        raise RuntimeError("the caller's transaction fails after the escalation")

    after = scrape()
    name = "ispsupport_conversations_escalated_total"
    assert after.value(name, reason="bot:asked_for_human") == before.value(
        name, reason="bot:asked_for_human"
    )


def test_the_sla_gauge_shows_what_the_registered_source_counts(customer):
    """The SLA code registers how it counts breaches; the gauge reads it on every scrape."""
    cutoff = timezone.now() - timedelta(hours=1)

    def waiting_over_an_hour() -> dict[str, int]:
        late = Conversation.objects.filter(state="waiting", waiting_since__lt=cutoff)
        return {"first_response": late.count(), "resolution": 0}

    for minutes in (90, 5):
        ConversationFactory(
            state=Conversation.State.WAITING,
            waiting_since=timezone.now() - timedelta(minutes=minutes),
        )
    metrics.register_sla_breach_source(waiting_over_an_hour)
    try:
        samples = scrape()
    finally:
        metrics.register_sla_breach_source(None)

    breached = "ispsupport_conversations_sla_breached"
    assert samples.value(breached, target="first_response") == 1
    assert samples.value(breached, target="resolution") == 0


def test_agents_online_and_their_capacity_are_read_on_scrape(
    agent, other_agent, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        services.agent_set_presence(user=agent, presence=Presence.AWAY)
    assert scrape().value("ispsupport_agents", presence="away") == 1
    with django_capture_on_commit_callbacks(execute=True):
        services.agent_set_presence(user=agent, presence=Presence.ONLINE)
        services.agent_set_presence(user=other_agent, presence=Presence.OFFLINE)

    samples = scrape()

    assert samples.value("ispsupport_agents", presence="online") == 1
    assert samples.value("ispsupport_agents", presence="offline") == 1
    assert samples.value("ispsupport_agents_online_capacity") == agent.max_concurrent_conversations


def test_the_outbox_backlog_shows_its_oldest_message(customer):
    conversation = ConversationFactory(customer=customer)
    message = services.message_record_outbound(
        conversation=conversation, sender_kind="agent", text="Já verifico."
    )  # commit hooks not run: nothing dispatches it
    type(message).objects.filter(pk=message.pk).update(
        created_at=timezone.now() - timedelta(minutes=3)
    )

    samples = scrape()

    assert samples.value("ispsupport_outbox_pending") == 1
    assert samples.value("ispsupport_outbox_oldest_pending_seconds") >= 180


@pytest.fixture
def _keep_the_test_connection(monkeypatch):
    import channels.db

    monkeypatch.setattr(channels.db, "close_old_connections", lambda: None)


@pytest.mark.usefixtures("isolated_channel_layer", "_keep_the_test_connection")
def test_open_console_sockets_are_counted_while_they_are_open(agent):
    client = Client()
    login(client, agent)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    headers = [
        (b"origin", b"http://testserver"),
        (b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode()),
    ]
    before = scrape().value("ispsupport_console_websockets")

    async def scenario() -> tuple[float, float]:
        socket = WebsocketCommunicator(application, "/ws/console/", headers=headers)
        connected, _ = await socket.connect(timeout=3)
        assert connected
        await socket.receive_json_from(timeout=3)  # ready
        during = (await sync_to_async(scrape)()).value("ispsupport_console_websockets")
        await socket.disconnect()
        after = (await sync_to_async(scrape)()).value("ispsupport_console_websockets")
        return during, after

    during, after = async_to_sync(scenario)()

    assert during - before == 1
    assert after == before
