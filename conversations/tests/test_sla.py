"""SLA clocks on conversations: set by the services, read in SQL by ``conversations.sla``.

Times are fixed (Monday 24 November 2025, São Paulo) and passed explicitly; targets are
wall-clock unless a test is about business hours (``test_business_hours.py`` covers those).
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from accounts.models import SlaPriority, SlaTarget, TeamOpeningHours
from accounts.tests.factories import TeamFactory
from compliance.services.deadlines import SAC_RULES
from conversations import services, sla
from conversations.models import Conversation, ConversationEvent, Message
from conversations.tests.factories import ConversationFactory

pytestmark = pytest.mark.django_db

SP = ZoneInfo("America/Sao_Paulo")
T0 = datetime(2025, 11, 24, 10, 0, tzinfo=SP)  # a Monday morning


def minutes(n: int) -> timedelta:
    return timedelta(minutes=n)


@pytest.fixture
def targets(team_support, team_billing):
    SlaTarget.objects.create(
        team=team_support,
        priority=1,
        first_response_minutes=30,
        resolution_minutes=240,
        business_hours=False,
    )
    SlaTarget.objects.create(
        team=team_support,
        priority=3,
        first_response_minutes=5,
        resolution_minutes=60,
        business_hours=False,
    )
    SlaTarget.objects.create(
        team=team_billing,
        priority=1,
        first_response_minutes=120,
        resolution_minutes=1440,
        business_hours=False,
    )


def escalated(team, *, at=T0, priority=None) -> Conversation:
    conversation = ConversationFactory(opened_at=at, last_customer_message_at=at)
    return services.conversation_escalate(
        conversation=conversation, reason="test", team=team, priority=priority, now=at
    )


def reload(conversation: Conversation, now: datetime) -> Conversation:
    return sla.annotate(Conversation.objects.filter(pk=conversation.pk), now).get()


def test_escalation_starts_the_clocks_from_the_teams_target(targets, team_support):
    conversation = escalated(team_support)
    conversation.refresh_from_db()

    assert conversation.sla_started_at == T0
    assert conversation.first_response_due_at == T0 + minutes(30)
    assert conversation.resolution_due_at == T0 + minutes(240)


def test_escalation_on_friday_evening_is_due_on_monday(team_support):
    for weekday in range(5):
        TeamOpeningHours.objects.create(
            team=team_support, weekday=weekday, opens_at=time(8), closes_at=time(18)
        )
    SlaTarget.objects.create(
        team=team_support, priority=1, first_response_minutes=60, resolution_minutes=480
    )
    friday_evening = datetime(2025, 11, 21, 19, 0, tzinfo=SP)

    conversation = escalated(team_support, at=friday_evening)
    conversation.refresh_from_db()

    assert conversation.first_response_due_at == datetime(2025, 11, 24, 9, 0, tzinfo=SP)
    assert conversation.state == Conversation.State.WAITING


def test_a_claim_straight_from_the_bot_starts_the_clocks(targets, agent, team_support):
    conversation = ConversationFactory(team=team_support)

    services.conversation_claim(conversation=conversation, agent=agent)
    conversation.refresh_from_db()

    assert conversation.sla_started_at is not None
    assert conversation.first_response_due_at == conversation.sla_started_at + minutes(30)


def test_raising_the_priority_shortens_the_clocks_from_the_same_start(
    targets, supervisor, team_support
):
    conversation = escalated(team_support)

    services.conversation_set_priority(
        conversation=conversation, priority=Conversation.Priority.URGENT, actor=supervisor
    )
    conversation.refresh_from_db()

    assert conversation.sla_started_at == T0
    assert conversation.first_response_due_at == T0 + minutes(5)
    assert conversation.resolution_due_at == T0 + minutes(60)


def test_a_transfer_takes_the_new_teams_targets_without_restarting_the_wait(
    targets, supervisor, team_support, team_billing
):
    conversation = escalated(team_support)

    services.conversation_transfer(conversation=conversation, actor=supervisor, team=team_billing)
    conversation.refresh_from_db()

    assert conversation.sla_started_at == T0
    assert conversation.first_response_due_at == T0 + minutes(120)
    assert conversation.resolution_due_at == T0 + minutes(1440)


def test_the_bots_reading_sets_the_kind_and_the_anatel_deadline(team_support):
    conversation = ConversationFactory(opened_at=T0)

    services.conversation_classify_by_bot(conversation=conversation, request_kind="complaint")
    conversation.refresh_from_db()

    assert conversation.request_kind == Conversation.RequestKind.COMPLAINT
    assert conversation.request_kind_source == Conversation.RequestKindSource.BOT
    # Complaints: 7 calendar days, to the end of the day (São Paulo).
    assert conversation.anatel_due_at == datetime(2025, 12, 1, 23, 59, 59, tzinfo=SP)


def test_staffs_classification_wins_over_the_bots(supervisor, team_support):
    conversation = ConversationFactory(opened_at=T0, team=team_support)
    services.conversation_classify_by_bot(conversation=conversation, request_kind="request")

    services.conversation_set_request_kind(
        conversation=conversation, request_kind="cancellation", actor=supervisor
    )
    services.conversation_classify_by_bot(conversation=conversation, request_kind="information")
    conversation.refresh_from_db()

    assert conversation.request_kind == Conversation.RequestKind.CANCELLATION
    assert conversation.request_kind_source == Conversation.RequestKindSource.STAFF
    # Cancellation: 2 business days (Tuesday 25, Wednesday 26).
    assert conversation.anatel_due_at == datetime(2025, 11, 26, 23, 59, 59, tzinfo=SP)
    event = conversation.events.get(kind=ConversationEvent.Kind.CLASSIFIED)
    assert event.actor == supervisor
    assert event.data == {"from": "request", "to": "cancellation"}


def test_an_agent_may_not_classify_someone_elses_conversation(agent, team_support):
    conversation = ConversationFactory(team=team_support)
    with pytest.raises(services.ActionNotAllowed):
        services.conversation_set_request_kind(
            conversation=conversation, request_kind="complaint", actor=agent
        )


def test_first_response_breach_follows_the_answer(targets, agent, team_support):
    unanswered = escalated(team_support)
    answered_in_time = escalated(team_support)
    answered_late = escalated(team_support)
    for conversation, at in (
        (answered_in_time, T0 + minutes(10)),
        (answered_late, T0 + minutes(40)),
    ):
        services.conversation_assign(conversation=conversation, agent=agent)
        services.message_record_outbound(
            conversation=conversation, sender_kind=Message.SenderKind.AGENT, text="Olá!", now=at
        )
    now = T0 + minutes(45)

    assert reload(unanswered, now).sla_first_response_breached
    assert not reload(answered_in_time, now).sla_first_response_breached
    assert reload(answered_late, now).sla_first_response_breached
    assert not reload(unanswered, T0 + minutes(29)).sla_first_response_breached


def test_resolution_and_anatel_breaches(targets, supervisor, team_support):
    conversation = escalated(team_support)
    services.conversation_classify_by_bot(conversation=conversation, request_kind="complaint")

    late = reload(conversation, T0 + minutes(241))
    assert late.sla_resolution_breached and late.sla_breached
    assert not late.sla_anatel_breached
    weeks_later = reload(conversation, T0 + timedelta(days=8))
    assert weeks_later.sla_anatel_breached

    services.conversation_close(conversation=conversation, resolution="resolved", actor=supervisor)
    # Closed now (long after T0 + 4 h): the resolution came late, and stays late.
    closed = reload(conversation, T0 + timedelta(days=30))
    assert closed.sla_resolution_breached
    assert closed.sla_next_due_at is None


def test_near_due_is_open_not_breached_and_close_to_a_clock(targets, team_support, settings):
    settings.SLA_NEAR_DUE_MINUTES = 10
    conversation = escalated(team_support)

    assert not reload(conversation, T0 + minutes(5)).sla_near_due  # 25 minutes left
    near = reload(conversation, T0 + minutes(25))
    assert near.sla_near_due and not near.sla_breached
    assert near.sla_next_due_at == T0 + minutes(30)
    assert not reload(conversation, T0 + minutes(31)).sla_near_due  # breached by then


def test_breaching_lists_the_most_urgent_first_in_one_query(
    targets, team_support, django_assert_num_queries, settings
):
    settings.SLA_NEAR_DUE_MINUTES = 10
    breached_early = escalated(team_support, at=T0 - minutes(60))
    breached = escalated(team_support, at=T0 - minutes(40))
    near = escalated(team_support, at=T0 - minutes(25))
    escalated(team_support, at=T0)  # fine
    now = T0

    with django_assert_num_queries(1):
        only_breached = [c.pk for c in sla.breaching(Conversation.objects.all(), now)]
    with django_assert_num_queries(1):
        attention = list(sla.breaching(Conversation.objects.all(), now, include_near_due=True))

    assert only_breached == [breached_early.pk, breached.pk]
    assert [c.pk for c in attention] == [breached_early.pk, breached.pk, near.pk]
    assert [sla.row_status(c) for c in attention] == ["breached", "breached", "near_due"]


def test_sla_summary_counts_each_team_in_one_query(
    targets, team_support, team_billing, django_assert_num_queries, settings
):
    settings.SLA_NEAR_DUE_MINUTES = 10
    escalated(team_support, at=T0 - minutes(60))  # first response breached
    escalated(team_support, at=T0 - minutes(25))  # near due
    escalated(team_support, at=T0)
    ConversationFactory()  # with the bot, no team
    quiet = TeamFactory(slug="quieta", name="Quieta")

    with django_assert_num_queries(1):
        summary = sla.sla_summary([team_support, team_billing.pk, quiet, None], T0)

    assert list(summary) == [team_support.pk, team_billing.pk, quiet.pk, None]
    support = summary[team_support.pk]
    assert (support.open, support.waiting, support.breached) == (3, 3, 1)
    assert support.first_response_breached == 1 and support.resolution_breached == 0
    assert support.near_due == 1 and support.unclassified == 3
    assert support.oldest_waiting_since == T0 - minutes(60)
    assert summary[team_billing.pk] == sla.SlaSummary(team_id=team_billing.pk)
    assert summary[None].open == 1 and summary[None].breached == 0


def test_the_kinds_and_priorities_agree_with_compliance_and_accounts():
    assert set(Conversation.RequestKind.values) == set(SAC_RULES)
    assert SlaPriority.choices == Conversation.Priority.choices


def test_the_service_record_names_the_demands_kind(supervisor, team_support):
    from compliance.services import service_record_for_protocol

    conversation = escalated(team_support)
    services.conversation_classify_by_bot(conversation=conversation, request_kind="complaint")
    services.conversation_close(conversation=conversation, resolution="resolved", actor=supervisor)

    record = service_record_for_protocol(conversation.protocol)

    assert record["classification"] == "Reclamação / Resolvido"


def test_the_console_timeline_shows_the_kind_and_the_outside_hours_notice(
    console_client, supervisor, team_support
):
    from django.utils import timezone

    opens = timezone.localtime(timezone.now(), SP).date() + timedelta(days=3)
    TeamOpeningHours.objects.create(
        team=team_support, weekday=opens.weekday(), opens_at=time(8), closes_at=time(9)
    )
    team_support.closed_on_national_holidays = False
    team_support.save(update_fields=["closed_on_national_holidays"])
    conversation = services.conversation_escalate(
        conversation=ConversationFactory(), reason="test", team=team_support
    )
    services.conversation_set_request_kind(
        conversation=conversation, request_kind="complaint", actor=supervisor
    )

    page = console_client(supervisor).get(f"/console/c/{conversation.pk}/")

    html = page.content.decode()
    assert f"cliente avisado da volta em {opens:%d/%m} 08:00" in html
    assert "Tipo de demanda: Reclamação" in html


def test_the_dashboard_tile_counts_breaches_in_the_supervisors_scope(
    console_client, targets, supervisor, team_support
):
    from django.utils import timezone

    now = timezone.now()
    escalated(team_support, at=now - minutes(45))  # first response 15 minutes late
    escalated(team_support, at=now - minutes(5))
    today = timezone.localdate()
    yesterday = today - timedelta(days=1)  # the period covers the 45 minutes even at 00:10
    client = console_client(supervisor)

    data = client.get(f"/console/dashboard/snapshot/?from={yesterday}&to={today}").json()

    assert data["sla"]["breaching_now"] == 1
    assert data["sla"]["started"] == 2 and data["sla"]["breached"] == 1
