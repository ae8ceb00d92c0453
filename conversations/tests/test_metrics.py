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
from conversations import services
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


def test_first_response_and_resolution_count_from_when_people_first_had_it(
    customer, agent, team_support, django_capture_on_commit_callbacks
):
    """The SLA clock's rule (``sla.people_since``): a return to the queue does not restart the
    customer's wait, so neither the first response nor the resolution counts from it."""
    now = timezone.now()
    conversation = ConversationFactory(customer=customer, opened_at=now - timedelta(minutes=40))
    before = scrape()

    with django_capture_on_commit_callbacks(execute=True):
        services.conversation_escalate(
            conversation=conversation,
            reason="bot:human_requested",
            team=team_support,
            now=now - timedelta(minutes=30),
        )
        services.conversation_claim(conversation=conversation, agent=agent)
        services.conversation_unassign(conversation=conversation, reason="agent_offline")
        services.conversation_claim(conversation=conversation, agent=agent)
        services.message_send_by_agent(conversation=conversation, agent=agent, text="Olá!")
        services.conversation_close_by_staff(
            conversation=conversation, actor=agent, resolution="resolved", send_csat=False
        )
    after = scrape()

    def delta(name: str, **labels: str) -> float:
        return after.value(name, **labels) - before.value(name, **labels)

    first = "ispsupport_conversation_first_response_seconds"
    assert delta(f"{first}_count", priority="normal") == 1
    # From the escalation 30 minutes ago: not from the return to the queue (a moment ago), not
    # from the opening 40 minutes ago.
    assert 30 * 60 <= delta(f"{first}_sum", priority="normal") < 35 * 60
    resolution = "ispsupport_conversation_resolution_seconds"
    assert delta(f"{resolution}_count", resolution="resolved") == 1
    assert 30 * 60 <= delta(f"{resolution}_sum", resolution="resolved") < 35 * 60


def test_a_claim_straight_from_the_bot_counts_from_the_claim(
    customer, agent, team_support, django_capture_on_commit_callbacks
):
    """The customer talked to the bot for half an hour and never waited for a person: the
    agent who took the conversation answered at once (as the SLA clock says)."""
    conversation = ConversationFactory(
        customer=customer, team=team_support, opened_at=timezone.now() - timedelta(minutes=30)
    )
    before = scrape()

    with django_capture_on_commit_callbacks(execute=True):
        services.conversation_claim(conversation=conversation, agent=agent)
        services.message_send_by_agent(conversation=conversation, agent=agent, text="Olá!")
        services.conversation_close_by_staff(
            conversation=conversation, actor=agent, resolution="resolved", send_csat=False
        )
    after = scrape()

    def delta(name: str, **labels: str) -> float:
        return after.value(name, **labels) - before.value(name, **labels)

    first = "ispsupport_conversation_first_response_seconds"
    assert delta(f"{first}_count", priority="normal") == 1
    assert delta(f"{first}_sum", priority="normal") < 5 * 60
    resolution = "ispsupport_conversation_resolution_seconds"
    assert delta(f"{resolution}_count", resolution="resolved") == 1
    assert delta(f"{resolution}_sum", resolution="resolved") < 5 * 60
    # The whole contact still lasted half an hour.
    duration = "ispsupport_conversation_duration_seconds_sum"
    assert delta(duration, resolution="resolved") >= 30 * 60


def test_the_sla_gauge_counts_open_conversations_past_each_clock_of_conversations_sla(
    customer, supervisor, team_support, admin_member, django_capture_on_commit_callbacks
):
    """The gauge reads the SLA module's own conditions: the same conversations the admin's
    "SLA vencido" filter and the dashboard's SLA tile count."""
    from accounts.models import SlaTarget
    from conversations import dashboard, sla

    SlaTarget.objects.create(
        team=team_support,
        priority=1,
        first_response_minutes=30,
        resolution_minutes=600,
        business_hours=False,
    )
    now = timezone.now()

    def escalated(minutes_ago: int, **kwargs) -> Conversation:
        at = now - timedelta(minutes=minutes_ago)
        return services.conversation_escalate(
            conversation=ConversationFactory(opened_at=kwargs.pop("opened_at", at)),
            reason="test",
            team=team_support,
            now=at,
            **kwargs,
        )

    escalated(45)  # first response 15 minutes late
    escalated(5)  # on time
    # A cancellation (2 business days at Anatel) opened ten days ago, escalated just now.
    escalated(1, opened_at=now - timedelta(days=10), request_kind="cancellation")
    late_but_closed = escalated(50)
    with django_capture_on_commit_callbacks(execute=True):
        services.conversation_close(
            conversation=late_but_closed, resolution="resolved", actor=supervisor
        )

    samples = scrape()

    breached = "ispsupport_conversations_sla_breached"
    assert samples.value(breached, target="first_response") == 1
    assert samples.value(breached, target="resolution") == 0
    assert samples.value(breached, target="anatel") == 1
    open_breaching = Conversation.objects.exclude(state="closed").filter(sla.breach_q(now))
    assert open_breaching.count() == 2
    period = dashboard.Period(timezone.localdate() - timedelta(days=10), timezone.localdate())
    assert dashboard.dashboard_sla(user=admin_member, period=period)["breaching_now"] == 2


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
