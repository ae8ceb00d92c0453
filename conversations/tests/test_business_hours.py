"""Business hours and SLA due times in São Paulo time, with national and team holidays.

The calendar: Monday to Friday 08:00–18:00 (America/Sao_Paulo). 20 November 2025 (a
Thursday) is a national holiday (Consciência Negra, national since 2024); 3 April 2026 is Good
Friday. Instants are given in UTC where it matters, to prove the São Paulo clock is the one used.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from accounts.models import SlaTarget, TeamHoliday, TeamOpeningHours
from accounts.tests.factories import TeamFactory
from conversations import business_hours, sla

pytestmark = pytest.mark.django_db

SP = ZoneInfo("America/Sao_Paulo")


def sp(*args: int) -> datetime:
    return datetime(*args, tzinfo=SP)


@pytest.fixture
def office_team():
    team = TeamFactory(slug="escritorio", name="Escritório")
    for weekday in range(5):
        TeamOpeningHours.objects.create(
            team=team, weekday=weekday, opens_at=time(8), closes_at=time(18)
        )
    return team


def target(team, *, first: int, resolution: int, business_hours: bool = True, priority: int = 1):
    return SlaTarget.objects.create(
        team=team,
        priority=priority,
        first_response_minutes=first,
        resolution_minutes=resolution,
        business_hours=business_hours,
    )


def test_friday_evening_message_is_due_on_monday_morning(office_team):
    target(office_team, first=60, resolution=8 * 60)
    # 22:00 UTC is 19:00 in São Paulo: the team closed an hour ago.
    friday_evening = datetime(2025, 11, 21, 22, 0, tzinfo=UTC)

    due = sla.due_times(team_id=office_team.pk, priority=1, started_at=friday_evening)

    assert due.first_response_due_at == sp(2025, 11, 24, 9, 0)  # Monday 09:00
    # Eight open hours: Monday 08:00–16:00.
    assert due.resolution_due_at == sp(2025, 11, 24, 16, 0)


def test_a_national_holiday_is_skipped(office_team):
    target(office_team, first=60, resolution=120)
    wednesday_late = sp(2025, 11, 19, 17, 30)

    due = sla.due_times(team_id=office_team.pk, priority=1, started_at=wednesday_late)

    # 30 minutes on Wednesday, Thursday 20/11 is Consciência Negra, the rest on Friday.
    assert due.first_response_due_at == sp(2025, 11, 21, 8, 30)
    assert due.resolution_due_at == sp(2025, 11, 21, 9, 30)


def test_good_friday_is_a_national_holiday_too(office_team):
    target(office_team, first=30, resolution=60)
    thursday_evening = sp(2026, 4, 2, 18, 30)

    due = sla.due_times(team_id=office_team.pk, priority=1, started_at=thursday_evening)

    assert due.first_response_due_at == sp(2026, 4, 6, 8, 30)  # Friday 3/4 and the weekend off


def test_a_team_holiday_is_skipped(office_team):
    TeamHoliday.objects.create(team=office_team, day=sp(2025, 11, 24).date(), description="Folga")
    target(office_team, first=60, resolution=600)
    friday_evening = sp(2025, 11, 21, 19, 0)

    due = sla.due_times(team_id=office_team.pk, priority=1, started_at=friday_evening)

    assert due.first_response_due_at == sp(2025, 11, 25, 9, 0)  # Tuesday: Monday was off
    assert due.resolution_due_at == sp(2025, 11, 25, 18, 0)  # ten open hours: all of Tuesday


def test_a_team_that_works_on_national_holidays_counts_them(office_team):
    office_team.closed_on_national_holidays = False
    office_team.save(update_fields=["closed_on_national_holidays"])
    target(office_team, first=60, resolution=120)

    due = sla.due_times(team_id=office_team.pk, priority=1, started_at=sp(2025, 11, 19, 17, 30))

    assert due.first_response_due_at == sp(2025, 11, 20, 8, 30)  # Thursday 20/11 is a workday


def test_team_holidays_belong_to_their_team_only(office_team):
    other = TeamFactory(slug="outra", name="Outra")
    for weekday in range(5):
        TeamOpeningHours.objects.create(
            team=other, weekday=weekday, opens_at=time(8), closes_at=time(18)
        )
    TeamHoliday.objects.create(team=other, day=sp(2025, 11, 24).date(), description="Folga")
    target(office_team, first=60, resolution=120)

    due = sla.due_times(team_id=office_team.pk, priority=1, started_at=sp(2025, 11, 21, 19, 0))

    assert due.first_response_due_at == sp(2025, 11, 24, 9, 0)


def test_wall_clock_targets_ignore_the_calendar(office_team):
    target(office_team, first=60, resolution=240, business_hours=False)
    friday_evening = sp(2025, 11, 21, 19, 0)

    due = sla.due_times(team_id=office_team.pk, priority=1, started_at=friday_evening)

    assert due.first_response_due_at == sp(2025, 11, 21, 20, 0)
    assert due.resolution_due_at == sp(2025, 11, 21, 23, 0)


def test_a_team_without_opening_hours_is_served_around_the_clock():
    team = TeamFactory(slug="plantao", name="Plantão")
    target(team, first=15, resolution=60)
    saturday_night = sp(2025, 11, 22, 23, 50)

    due = sla.due_times(team_id=team.pk, priority=1, started_at=saturday_night)

    assert due.first_response_due_at == sp(2025, 11, 23, 0, 5)
    assert business_hours.calendar_for_team(team).is_open(saturday_night)


def test_the_default_target_applies_to_teams_without_their_own(office_team):
    SlaTarget.objects.create(
        team=None, priority=2, first_response_minutes=10, resolution_minutes=60
    )
    target(office_team, first=30, resolution=90, priority=1)
    monday = sp(2025, 11, 24, 10, 0)

    high = sla.due_times(team_id=office_team.pk, priority=2, started_at=monday)
    normal = sla.due_times(team_id=office_team.pk, priority=1, started_at=monday)
    no_target = sla.due_times(team_id=office_team.pk, priority=0, started_at=monday)

    assert high.first_response_due_at == sp(2025, 11, 24, 10, 10)
    assert normal.first_response_due_at == sp(2025, 11, 24, 10, 30)
    assert no_target.first_response_due_at is None and no_target.resolution_due_at is None


def test_split_shifts_and_periods_running_to_midnight():
    team = TeamFactory(slug="turnos", name="Turnos")
    TeamOpeningHours.objects.create(team=team, weekday=0, opens_at=time(8), closes_at=time(12))
    TeamOpeningHours.objects.create(team=team, weekday=0, opens_at=time(13), closes_at=time(23, 59))
    TeamOpeningHours.objects.create(team=team, weekday=1, opens_at=time(0), closes_at=time(2))
    calendar = business_hours.calendar_for_team(team)

    assert not calendar.is_open(sp(2025, 11, 24, 12, 30))  # lunch
    assert calendar.next_opening(sp(2025, 11, 24, 12, 30)) == sp(2025, 11, 24, 13, 0)
    # 11:30 + 90 open minutes: 30 before lunch, 60 after.
    assert calendar.add_minutes(sp(2025, 11, 24, 11, 30), 90) == sp(2025, 11, 24, 14, 0)
    # The evening period runs to midnight and Tuesday's starts at it: no gap.
    assert calendar.is_open(sp(2025, 11, 24, 23, 59, 30))
    assert calendar.add_minutes(sp(2025, 11, 24, 23, 30), 60) == sp(2025, 11, 25, 0, 30)
    assert not calendar.is_open(sp(2025, 11, 25, 2, 0))


def test_next_opening_in_words_for_the_customer(office_team):
    calendar = business_hours.calendar_for_team(office_team)
    friday_night = sp(2025, 11, 21, 21, 0)
    monday_early = sp(2025, 11, 24, 6, 0)
    sunday_night = sp(2025, 11, 23, 22, 0)

    assert calendar.next_opening(friday_night) == sp(2025, 11, 24, 8, 0)
    words = business_hours.describe_opening
    assert words(calendar.next_opening(friday_night), friday_night) == (
        "segunda-feira, 24/11, às 08:00"
    )
    assert words(calendar.next_opening(monday_early), monday_early) == "hoje às 08:00"
    assert words(calendar.next_opening(sunday_night), sunday_night) == (
        "amanhã (segunda-feira) às 08:00"
    )


def test_a_calendar_that_never_opens_falls_back_to_wall_clock():
    team = TeamFactory(slug="nunca", name="Nunca")
    TeamOpeningHours.objects.create(team=team, weekday=0, opens_at=time(8), closes_at=time(9))
    mondays = [sp(2025, 11, 24).date() + timedelta(weeks=n) for n in range(-2, 70)]
    TeamHoliday.objects.bulk_create(TeamHoliday(team=team, day=day) for day in mondays)
    calendar = business_hours.calendar_for_team(team)
    start = sp(2025, 11, 24, 10, 0)

    assert calendar.next_opening(start) is None
    assert calendar.add_minutes(start, 30) == start + timedelta(minutes=30)
