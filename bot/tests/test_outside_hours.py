"""Escalation outside the team's business hours, and the demand's kind the bot derives.

The clock is the real one: the team is given a single opening, 08:00–09:00 three days from
today (São Paulo), so whatever time the suite runs the team is closed and the next opening is
known; it works on national holidays, so none can move it.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from accounts.models import TeamOpeningHours
from bot.tests.conftest import bot_messages, escalation_event
from compliance.services import sac_deadline
from conversations.models import Conversation, Message

pytestmark = pytest.mark.django_db

SP = ZoneInfo("America/Sao_Paulo")
WEEKDAYS = [
    "segunda-feira",
    "terça-feira",
    "quarta-feira",
    "quinta-feira",
    "sexta-feira",
    "sábado",
    "domingo",
]


def open_only_in_three_days(team) -> datetime:
    day = timezone.localtime(timezone.now(), SP).date() + timedelta(days=3)
    TeamOpeningHours.objects.create(
        team=team, weekday=day.weekday(), opens_at=time(8), closes_at=time(9)
    )
    team.closed_on_national_holidays = False
    team.save(update_fields=["closed_on_national_holidays"])
    return datetime.combine(day, time(8), tzinfo=SP)


def test_outside_hours_the_customer_is_told_when_a_person_is_back(say, conversation, team_billing):
    back_at = open_only_in_three_days(team_billing)

    say("quero cancelar minha internet")

    conversation.refresh_from_db()
    assert conversation.state == Conversation.State.WAITING  # queued, not closed
    assert conversation.team == team_billing
    _greeting, hand_off, notice = bot_messages(conversation)
    assert "cancelamento" in hand_off.text
    when = f"{WEEKDAYS[back_at.weekday()]}, {back_at:%d/%m}, às 08:00"
    assert f"Um atendente volta {when} (horário de Brasília)" in notice.text
    assert conversation.protocol in notice.text
    assert notice.direction == Message.Direction.OUTBOUND
    assert notice.status == Message.Status.PENDING  # in the outbox, on its way to WhatsApp
    event = escalation_event(conversation)
    assert datetime.fromisoformat(event.data["outside_hours_until"]) == back_at


def test_inside_hours_the_hand_off_says_nothing_about_hours(say, conversation, team_billing):
    for weekday in range(7):
        TeamOpeningHours.objects.create(
            team=team_billing, weekday=weekday, opens_at=time(0), closes_at=time(23, 59)
        )
    team_billing.closed_on_national_holidays = False
    team_billing.save(update_fields=["closed_on_national_holidays"])

    say("quero cancelar minha internet")

    conversation.refresh_from_db()
    assert conversation.state == Conversation.State.WAITING
    assert len(bot_messages(conversation)) == 2  # greeting and hand-off only
    assert "outside_hours_until" not in escalation_event(conversation).data


def test_the_bot_classifies_the_demand_and_its_anatel_deadline_follows(
    say, conversation, team_billing
):
    say("quero cancelar minha internet")

    conversation.refresh_from_db()
    assert conversation.intent == "cancellation"
    assert conversation.request_kind == Conversation.RequestKind.CANCELLATION
    assert conversation.request_kind_source == Conversation.RequestKindSource.BOT
    # compliance's cancellation rule (2 business days; tested in compliance) from the opening.
    expected = sac_deadline(opened_at=conversation.opened_at, kind="cancellation").due_at
    assert conversation.anatel_due_at == expected
    assert conversation.sla_started_at is not None


def test_asking_for_a_person_later_keeps_what_the_demand_is_about(say, conversation):
    say("estou sem internet desde ontem")
    conversation.refresh_from_db()
    assert (conversation.intent, conversation.request_kind) == ("no_connection", "complaint")

    say("quero falar com atendente")

    conversation.refresh_from_db()
    assert conversation.state == Conversation.State.WAITING
    assert (conversation.intent, conversation.request_kind) == ("no_connection", "complaint")


def test_on_a_holiday_eve_the_notice_names_the_first_working_day_in_sao_paulo_time(team_billing):
    """Monday to Friday 08:00–18:00; Thursday 20/11/2025 is a national holiday (Consciência
    Negra). A hand-off at 22:30 UTC on Wednesday 19/11 is 19:30 in São Paulo: the team closed
    at 18:00, and people are back on Friday at 08:00."""
    from accounts.models import TeamHoliday
    from conversations import services
    from conversations.tests.factories import ConversationFactory

    for weekday in range(5):
        TeamOpeningHours.objects.create(
            team=team_billing, weekday=weekday, opens_at=time(8), closes_at=time(18)
        )
    at = datetime(2025, 11, 19, 22, 30, tzinfo=ZoneInfo("UTC"))
    conversation = ConversationFactory(opened_at=at, last_customer_message_at=at)

    services.conversation_escalate(
        conversation=conversation, reason="bot:human_requested", team=team_billing, now=at
    )

    conversation.refresh_from_db()
    assert conversation.state == Conversation.State.WAITING
    (notice,) = bot_messages(conversation)
    assert "Um atendente volta sexta-feira, 21/11, às 08:00 (horário de Brasília)" in notice.text
    assert conversation.protocol in notice.text and notice.status == Message.Status.PENDING
    back_at = datetime.fromisoformat(escalation_event(conversation).data["outside_hours_until"])
    assert back_at == datetime(2025, 11, 21, 8, 0, tzinfo=SP)

    # The team's own holiday on that Friday moves it to Monday.
    TeamHoliday.objects.create(team=team_billing, day=back_at.date(), description="Ponte")
    later = ConversationFactory(opened_at=at, last_customer_message_at=at)
    services.conversation_escalate(
        conversation=later, reason="bot:human_requested", team=team_billing, now=at
    )
    (notice,) = bot_messages(later)
    assert "Um atendente volta segunda-feira, 24/11, às 08:00 (horário de Brasília)" in notice.text
