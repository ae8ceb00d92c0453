"""Assignment, return-to-queue, presence, live events and visibility rules of the console."""

from __future__ import annotations

import itertools
import threading
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from accounts.models import Role
from accounts.tests.factories import TeamFactory, UserFactory
from conftest import on_postgres
from conversations import events, selectors, services
from conversations.models import Conversation, LiveEvent, Message
from conversations.tests.factories import ConversationFactory, CustomerFactory, MessageFactory

pytestmark = pytest.mark.django_db


def waiting(team, minutes_ago=0, **kwargs) -> Conversation:
    return ConversationFactory(
        team=team,
        state=Conversation.State.WAITING,
        waiting_since=timezone.now() - timedelta(minutes=minutes_ago),
        **kwargs,
    )


# --- automatic assignment -------------------------------------------------------------------


def test_autoassign_gives_the_oldest_and_most_urgent_first_within_capacity(team_support):
    agent = UserFactory(role=Role.AGENT, teams=[team_support], max_concurrent_conversations=2)
    newest = waiting(team_support, minutes_ago=1)
    oldest = waiting(team_support, minutes_ago=30)
    urgent = waiting(team_support, minutes_ago=2, priority=Conversation.Priority.URGENT)
    done = services.conversation_autoassign()
    assert [pk for pk, _ in done] == [urgent.pk, oldest.pk]
    newest.refresh_from_db()
    assert newest.state == "waiting"  # the agent is full
    assert Conversation.objects.filter(assigned_agent=agent).count() == 2


def test_autoassign_only_to_online_agents_of_the_right_team(team_support, team_billing):
    UserFactory(role=Role.AGENT, teams=[team_billing])
    UserFactory(role=Role.AGENT, teams=[team_support], presence="offline")
    UserFactory(role=Role.AGENT, teams=[team_support], presence="away")
    conversation = waiting(team_support)
    assert services.conversation_autoassign() == []
    conversation.refresh_from_db()
    assert conversation.state == "waiting"


def test_autoassign_balances_by_load(team_support):
    busy = UserFactory(role=Role.AGENT, teams=[team_support])
    free = UserFactory(role=Role.AGENT, teams=[team_support])
    ConversationFactory(team=team_support, state="assigned", assigned_agent=busy)
    conversation = waiting(team_support)
    assert services.conversation_autoassign() == [(conversation.pk, "auto_least_loaded")]
    conversation.refresh_from_db()
    assert conversation.assigned_agent == free
    assert conversation.events.get(kind="assigned").data["reason"] == "auto_least_loaded"


def test_returning_customer_goes_to_the_previous_agent_when_online(team_support):
    previous = UserFactory(role=Role.AGENT, teams=[team_support])
    UserFactory(role=Role.AGENT, teams=[team_support])  # less loaded, but not the previous one
    ConversationFactory(team=team_support, state="assigned", assigned_agent=previous)
    customer = CustomerFactory()
    ConversationFactory(
        customer=customer,
        team=team_support,
        state="closed",
        closed_at=timezone.now() - timedelta(days=3),
        assigned_agent=previous,
    )
    conversation = waiting(team_support, customer=customer)
    assert services.conversation_autoassign() == [(conversation.pk, "auto_previous_agent")]
    conversation.refresh_from_db()
    assert conversation.assigned_agent == previous


def test_returning_customer_goes_to_someone_else_when_the_previous_agent_is_offline(team_support):
    previous = UserFactory(role=Role.AGENT, teams=[team_support], presence="offline")
    other = UserFactory(role=Role.AGENT, teams=[team_support])
    customer = CustomerFactory()
    ConversationFactory(
        customer=customer,
        team=team_support,
        state="closed",
        closed_at=timezone.now(),
        assigned_agent=previous,
    )
    conversation = waiting(team_support, customer=customer)
    services.conversation_autoassign()
    conversation.refresh_from_db()
    assert conversation.assigned_agent == other


def test_going_online_triggers_assignment(team_support, django_capture_on_commit_callbacks):
    agent = UserFactory(role=Role.AGENT, teams=[team_support], presence="offline")
    conversation = waiting(team_support)
    with django_capture_on_commit_callbacks(execute=True):
        services.agent_set_presence(user=agent, presence="online")
    conversation.refresh_from_db()
    assert conversation.assigned_agent == agent


def test_auto_assign_can_be_switched_off(
    team_support, settings, django_capture_on_commit_callbacks
):
    settings.CONVERSATIONS_AUTO_ASSIGN = False
    agent = UserFactory(role=Role.AGENT, teams=[team_support], presence="offline")
    conversation = waiting(team_support)
    with django_capture_on_commit_callbacks(execute=True):
        services.agent_set_presence(user=agent, presence="online")
    conversation.refresh_from_db()
    assert conversation.state == "waiting"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("role_groups_survive_flush")
def test_concurrent_autoassign_never_exceeds_capacity():
    if not on_postgres():
        pytest.skip("row locks are proven on PostgreSQL")
    team = TeamFactory(slug="concorrencia")
    agents = [
        UserFactory(role=Role.AGENT, teams=[team], max_concurrent_conversations=3) for _ in range(2)
    ]
    for i in range(20):
        waiting(team, minutes_ago=i)
    barrier = threading.Barrier(4)
    errors: list[Exception] = []

    def worker():
        try:
            barrier.wait()
            services.conversation_autoassign(limit=10)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for agent in agents:
        assert Conversation.objects.filter(assigned_agent=agent, state="assigned").count() == 3
    assert Conversation.objects.filter(state="waiting").count() == 14
    # Every assignment happened once: one event per assigned conversation.
    assert Conversation.objects.filter(state="assigned", events__kind="assigned").count() == 6


# --- return to queue ------------------------------------------------------------------------


def _away_agent(team, minutes: int, presence="offline"):
    return UserFactory(
        role=Role.AGENT,
        teams=[team],
        presence=presence,
        presence_changed_at=timezone.now() - timedelta(minutes=minutes),
    )


def test_unanswered_conversations_of_an_agent_offline_too_long_go_back(team_support, settings):
    settings.CONVERSATIONS_RETURN_AFTER_MINUTES = 5
    agent = _away_agent(team_support, minutes=10)
    unanswered = ConversationFactory(team=team_support, state="assigned", assigned_agent=agent)
    MessageFactory(conversation=unanswered)
    unanswered.last_message = unanswered.messages.get()
    unanswered.first_response_at = timezone.now() - timedelta(minutes=20)
    unanswered.save(update_fields=["last_message", "first_response_at"])
    answered = ConversationFactory(
        team=team_support,
        state="assigned",
        assigned_agent=agent,
        first_response_at=timezone.now(),
    )
    reply = Message.objects.create(
        conversation=answered, direction="out", sender_kind="agent", text="feito", status="sent"
    )
    answered.last_message = reply
    answered.save(update_fields=["last_message"])

    assert services.conversation_return_unanswered() == [unanswered.pk]
    unanswered.refresh_from_db()
    assert unanswered.state == "waiting" and unanswered.assigned_agent is None
    assert unanswered.events.get(kind="unassigned").data["reason"] == "agent_offline"
    answered.refresh_from_db()
    assert answered.state == "assigned"


def test_nothing_returns_before_the_configured_time(team_support, settings):
    settings.CONVERSATIONS_RETURN_AFTER_MINUTES = 15
    agent = _away_agent(team_support, minutes=10, presence="away")
    conversation = ConversationFactory(team=team_support, state="assigned", assigned_agent=agent)
    assert services.conversation_return_unanswered() == []
    conversation.refresh_from_db()
    assert conversation.state == "assigned"


def test_away_reason_is_recorded(team_support, settings):
    settings.CONVERSATIONS_RETURN_AFTER_MINUTES = 1
    agent = _away_agent(team_support, minutes=3, presence="away")
    conversation = ConversationFactory(team=team_support, state="assigned", assigned_agent=agent)
    services.conversation_return_unanswered()
    assert conversation.events.get(kind="unassigned").data["reason"] == "agent_away"


def test_presence_sweep_sets_silent_agents_offline(agent):
    assert agent.presence == "online"
    assert services.presence_sweep() == 1
    agent.refresh_from_db()
    assert agent.presence == "offline"


def test_presence_sweep_keeps_agents_with_a_heartbeat(agent):
    services.agent_heartbeat(user=agent, state="online")
    assert services.presence_sweep() == 0


# --- live events ----------------------------------------------------------------------------


def test_events_are_stored_only_after_commit(team_support):
    conversation = waiting(team_support)
    with pytest.raises(RuntimeError), transaction.atomic():
        services.conversation_set_priority(conversation=conversation, priority=3)
        raise RuntimeError("rollback")
    assert not LiveEvent.objects.exists()


def test_event_audience_is_the_team_and_the_agent(
    team_support, agent, django_capture_on_commit_callbacks
):
    conversation = waiting(team_support)
    with django_capture_on_commit_callbacks(execute=True):
        services.conversation_claim(conversation=conversation, agent=agent)
    event = LiveEvent.objects.get(kind="conversation.assigned")
    assert event.audience.split() == sorted(
        [
            events.GROUP_ADMINS,
            events.group_for_team(team_support.pk),
            events.group_for_agent(agent.pk),
        ]
    )
    assert event.data["assigned_agent_id"] == str(agent.pk)


def test_transfer_tells_the_previous_audience(
    team_support, team_billing, agent, django_capture_on_commit_callbacks
):
    conversation = ConversationFactory(team=team_support, state="assigned", assigned_agent=agent)
    with django_capture_on_commit_callbacks(execute=True):
        services.conversation_transfer(conversation=conversation, actor=agent, team=team_billing)
    event = LiveEvent.objects.get(kind="conversation.transferred")
    groups = event.audience.split()
    assert events.group_for_team(team_support.pk) in groups  # so their screens drop it
    assert events.group_for_team(team_billing.pk) in groups


def test_inbound_counts_unread_and_outbound_by_agent_clears_it(team_support, agent):
    conversation = ConversationFactory(team=team_support, state="assigned", assigned_agent=agent)
    for n in range(2):
        services.message_record_inbound(
            conversation=conversation,
            wamid=f"wamid.u{n}",
            type="text",
            timestamp=timezone.now(),
            text="oi",
        )
    conversation.refresh_from_db()
    assert conversation.unread_count == 2
    assert conversation.last_message.wamid == "wamid.u1"
    services.message_send_by_agent(conversation=conversation, agent=agent, text="Olá!")
    conversation.refresh_from_db()
    assert conversation.unread_count == 0
    assert conversation.last_message.text == "Olá!"


def test_catch_up_returns_only_the_users_events(
    team_support, team_billing, agent, other_agent, django_capture_on_commit_callbacks
):
    mine = waiting(team_support)
    theirs = waiting(team_billing)
    with django_capture_on_commit_callbacks(execute=True):
        services.conversation_set_priority(conversation=mine, priority=2)
        services.conversation_set_priority(conversation=theirs, priority=2)
    caught = selectors.live_events_since(user=agent, since=0)
    assert [e["conversation_id"] for e in caught.events] == [mine.pk]
    caught = selectors.live_events_since(user=other_agent, since=0)
    assert [e["conversation_id"] for e in caught.events] == [theirs.pk]


def test_catch_up_of_too_many_events_asks_for_resync(
    team_support, agent, settings, django_capture_on_commit_callbacks
):
    settings.CONSOLE_CATCH_UP_MAX_EVENTS = 3
    conversation = waiting(team_support)
    with django_capture_on_commit_callbacks(execute=True):
        for priority in (0, 1, 2, 3, 0):
            services.conversation_set_priority(conversation=conversation, priority=priority)
    assert selectors.live_events_since(user=agent, since=1).resync is True


def test_bot_decision_service_records_and_publishes(
    team_support, django_capture_on_commit_callbacks
):
    conversation = waiting(team_support)
    with django_capture_on_commit_callbacks(execute=True):
        event = services.conversation_record_bot_decision(
            conversation_id=conversation.pk, data={"intent": "segunda_via", "escalated": False}
        )
    assert event.kind == "bot_decision"
    assert LiveEvent.objects.get(kind="conversation.event").data["event_id"] == event.pk


# --- one rule for who sees what -------------------------------------------------------------


def test_visibility_and_event_audience_agree(db, team_support, team_billing):
    """For every kind of user and conversation: a user's socket hears about a conversation
    exactly when the selectors let that user open it."""
    users = [
        UserFactory(role=Role.AGENT, teams=[team_support]),
        UserFactory(role=Role.AGENT, teams=[team_billing]),
        UserFactory(role=Role.AGENT, teams=[team_support, team_billing]),
        UserFactory(role=Role.AGENT, teams=[]),
        UserFactory(role=Role.SUPERVISOR, teams=[team_billing]),
        UserFactory(role=Role.ADMIN),
        UserFactory(role=Role.DPO),
    ]
    agent_a = users[0]
    conversations = []
    for team, agent in itertools.product([team_support, team_billing, None], [None, agent_a]):
        conversations.append(
            ConversationFactory(
                team=team,
                state="assigned" if agent else "waiting",
                assigned_agent=agent,
                customer=CustomerFactory(),
            )
        )
    for user in users:
        may_connect = user.has_role(Role.AGENT, Role.SUPERVISOR, Role.ADMIN)
        groups = set(events.user_groups(user)) if may_connect else set()
        for conversation in conversations:
            audience = events.conversation_audience(
                team_id=conversation.team_id, assigned_agent_id=conversation.assigned_agent_id
            )
            hears = bool(groups & audience)
            try:
                selectors.conversation_get_for_user(user=user, pk=conversation.pk)
                sees = True
            except Conversation.DoesNotExist:
                sees = False
            assert hears == sees, (
                user.username,
                conversation.team_id,
                conversation.assigned_agent_id,
            )
