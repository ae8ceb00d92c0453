"""When a team has people: its weekly opening hours, minus national and team holidays.

All wall-clock reasoning happens in São Paulo time (``compliance.services.deadlines``), the
country's legal clock; datetimes in and out are timezone-aware. National holidays come from
``compliance.services.holiday_name``, the same calendar the incident deadlines use, so the two
never disagree. A team without opening hours is open around the clock (and then holidays do
not matter): that keeps the product working before anyone configures a calendar.

A period closing at 23:59 runs to midnight, so "00:00–23:59 every day" is a true 24-hour
schedule and a shift across midnight is two periods (…–23:59, 00:00–…).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from django.utils import formats, timezone
from django.utils.translation import gettext as _

from accounts.models import Team, TeamHoliday, TeamOpeningHours, Weekday
from compliance.services import holiday_name
from compliance.services.deadlines import SAO_PAULO

# How far ahead to look for the next opening before deciding a calendar never opens (every
# configured day a holiday): a year and a bit covers any real calendar.
_HORIZON_DAYS = 400
_END_OF_DAY = time(23, 59)


@dataclass(frozen=True)
class TeamCalendar:
    """A team's calendar, loaded once (``calendar_for_team``) and then pure arithmetic.

    ``periods`` maps a weekday (Monday 0) to its (opens, closes) local times, sorted;
    ``team_holidays`` are the team's own days off; ``national_holidays`` says whether the
    national ones close it too.
    """

    periods: dict[int, tuple[tuple[time, time], ...]] = field(default_factory=dict)
    team_holidays: frozenset[date] = frozenset()
    national_holidays: bool = True

    @property
    def always_open(self) -> bool:
        return not any(self.periods.values())

    def closed_all_day(self, day: date) -> bool:
        """A holiday (the team's, or a national one when the team observes them)."""
        if day in self.team_holidays:
            return True
        return self.national_holidays and holiday_name(day) is not None

    def periods_on(self, day: date) -> list[tuple[datetime, datetime]]:
        """The day's open periods as aware São Paulo datetimes (none on holidays)."""
        if self.closed_all_day(day):
            return []
        result = []
        for opens, closes in self.periods.get(day.weekday(), ()):
            start = datetime.combine(day, opens, tzinfo=SAO_PAULO)
            if closes >= _END_OF_DAY:
                end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=SAO_PAULO)
            else:
                end = datetime.combine(day, closes, tzinfo=SAO_PAULO)
            result.append((start, end))
        return result

    def _periods_from(self, moment: datetime):
        """Open periods that end after ``moment``, in order, within the horizon."""
        day = timezone.localtime(moment, SAO_PAULO).date()
        # The previous day too: its period may run to midnight, i.e. into ``moment``'s day.
        for offset in range(-1, _HORIZON_DAYS):
            for start, end in self.periods_on(day + timedelta(days=offset)):
                if end > moment:
                    yield start, end

    def is_open(self, moment: datetime) -> bool:
        if self.always_open:
            return True
        for start, _end in self._periods_from(moment):
            return start <= moment
        return False

    def next_opening(self, moment: datetime) -> datetime | None:
        """``moment`` itself when open; else when the next period starts (None: the calendar
        has no opening within the horizon, e.g. every configured day is a holiday)."""
        if self.always_open:
            return moment
        for start, _end in self._periods_from(moment):
            return max(start, moment)
        return None

    def add_minutes(self, start: datetime, minutes: int) -> datetime:
        """The moment ``minutes`` of open time after ``start`` (closed time does not count).

        Wall-clock minutes when the team is always open, or when the calendar never opens
        (nothing to count against: better a deadline than none).
        """
        remaining = timedelta(minutes=minutes)
        if self.always_open:
            return start + remaining
        for period_start, period_end in self._periods_from(start):
            begin = max(period_start, start)
            available = period_end - begin
            if remaining <= available:
                return begin + remaining
            remaining -= available
        return start + timedelta(minutes=minutes)


ALWAYS_OPEN = TeamCalendar()


def calendar_for_team(team: Team | int | None) -> TeamCalendar:
    """Load a team's calendar (two or three small queries); no team: always open."""
    if team is None:
        return ALWAYS_OPEN
    team_id = team.pk if isinstance(team, Team) else team
    periods: dict[int, list[tuple[time, time]]] = {}
    for weekday, opens, closes in (
        TeamOpeningHours.objects.filter(team_id=team_id)
        .order_by("weekday", "opens_at")
        .values_list("weekday", "opens_at", "closes_at")
    ):
        periods.setdefault(weekday, []).append((opens, closes))
    if not periods:
        return ALWAYS_OPEN
    if isinstance(team, Team):
        national = team.closed_on_national_holidays
    else:
        national = (
            Team.objects.filter(pk=team_id)
            .values_list("closed_on_national_holidays", flat=True)
            .first()
        )
        national = True if national is None else national
    holidays = frozenset(TeamHoliday.objects.filter(team_id=team_id).values_list("day", flat=True))
    return TeamCalendar(
        periods={day: tuple(items) for day, items in periods.items()},
        team_holidays=holidays,
        national_holidays=national,
    )


def describe_opening(opening: datetime, now: datetime) -> str:
    """A pt-BR phrase for when people are back, São Paulo time: "hoje às 13:00", "amanhã
    (sábado) às 08:00", "segunda-feira, 24/11, às 08:00". Call under the customer's language."""
    local = timezone.localtime(opening, SAO_PAULO)
    today = timezone.localtime(now, SAO_PAULO).date()
    hour = formats.time_format(local.time(), "H:i")
    weekday = str(Weekday(local.weekday()).label)
    if local.date() == today:
        return _("hoje às %(hour)s") % {"hour": hour}
    if local.date() == today + timedelta(days=1):
        return _("amanhã (%(weekday)s) às %(hour)s") % {"weekday": weekday, "hour": hour}
    return _("%(weekday)s, %(date)s, às %(hour)s") % {
        "weekday": weekday,
        "date": local.strftime("%d/%m"),
        "hour": hour,
    }
