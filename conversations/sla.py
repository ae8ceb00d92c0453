"""Service levels of conversations: due times, breaches, and the supervisors' summaries.

Three clocks per conversation, stored on the row by the services (``conversations.services``)
whenever what they depend on changes, so every list and count below is plain SQL against
"now" (no per-row Python, no N+1):

- ``first_response_due_at`` and ``resolution_due_at``: from ``sla_started_at`` (when the
  conversation first reached people: escalation by the bot, or a claim straight from it), the
  team's ``accounts.SlaTarget`` for the conversation's priority (the team's own, else the
  default row), counted in the team's business hours (``conversations.business_hours``) when
  the target says so. A transfer or a priority change recomputes them from the same start: the
  customer's wait does not restart.
- ``anatel_due_at``: the legal deadline of the demand's kind (``request_kind``) from the
  opening of the contact, by ``compliance.services.sac_deadline`` (information and requests
  10 days, complaints 7, cancellation the provider's target — 2 business days by default —
  within 7 calendar days, protocol history 5).

A clock is *breached* when the thing it waits for (the first human answer, the close) came
after it, or has not come and "now" is past it. *Near due*: open, not breached, and a pending
clock ends within ``SLA_NEAR_DUE_MINUTES`` (``SLA_ANATEL_NEAR_DUE_HOURS`` for the Anatel one).

Public, stable for other code (the dashboard and the metrics use them): ``breach_q`` (and
the per-clock ``first_response_breach_q``, ``resolution_breach_q``, ``anatel_breach_q``),
``near_due_q``, ``annotate``, ``breaching``, ``sla_summary``, ``SlaSummary``, and
``people_since`` / ``reached_people`` (with their SQL forms): where first-response and
resolution times start.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import (
    BooleanField,
    Case,
    Count,
    DateTimeField,
    F,
    Min,
    Q,
    QuerySet,
    Value,
    When,
)
from django.db.models.functions import Coalesce, Least

from accounts.models import SlaTarget, Team
from compliance.services import sac_deadline
from conversations.business_hours import TeamCalendar, calendar_for_team
from conversations.models import Conversation

_OPEN = ~Q(state=Conversation.State.CLOSED)
# Stands in for "no clock" inside LEAST(): PostgreSQL's LEAST skips NULLs, SQLite's does not.
_FAR_FUTURE = datetime(9999, 1, 1, tzinfo=UTC)


# --- computing the due times (services call these and store the result) ------------------------


@dataclass(frozen=True)
class DueTimes:
    first_response_due_at: datetime | None
    resolution_due_at: datetime | None


def target_for(*, team_id: int | None, priority: int) -> SlaTarget | None:
    """The team's target for ``priority``, else the default one (team empty), else None."""
    candidates = SlaTarget.objects.filter(
        Q(team_id=team_id) | Q(team__isnull=True) if team_id else Q(team__isnull=True),
        priority=priority,
    )
    found = list(candidates)
    own = [t for t in found if t.team_id is not None]
    return (own or found or [None])[0]


def due_times(
    *,
    team_id: int | None,
    priority: int,
    started_at: datetime | None,
    calendar: TeamCalendar | None = None,
) -> DueTimes:
    """First-response and resolution due times for a conversation that reached people at
    ``started_at`` (None for both when it has not, or when no target applies)."""
    if started_at is None:
        return DueTimes(None, None)
    target = target_for(team_id=team_id, priority=priority)
    if target is None:
        return DueTimes(None, None)
    if target.business_hours:
        calendar = calendar if calendar is not None else calendar_for_team(team_id)
        return DueTimes(
            calendar.add_minutes(started_at, target.first_response_minutes),
            calendar.add_minutes(started_at, target.resolution_minutes),
        )
    return DueTimes(
        started_at + timedelta(minutes=target.first_response_minutes),
        started_at + timedelta(minutes=target.resolution_minutes),
    )


# --- when people's clock starts: the one rule for SLA clocks, dashboard and Prometheus ---------
#
# First-response and resolution *times* (the dashboard's p50/p90, the CSV, the
# ``ispsupport_conversation_first_response_seconds`` and ``…_resolution_seconds`` histograms)
# count from the same moment as the SLA clocks: when the conversation first reached people.
# Neither a return to the queue nor a transfer restarts it (the customer's wait goes on).


def people_since(conversation: Any) -> datetime:
    """When ``conversation`` first reached people: ``sla_started_at`` (escalation, or a claim
    straight from the bot); for rows older than the SLA clocks, the escalation, else the
    opening. Meaningful for conversations that ``reached_people``."""
    return conversation.sla_started_at or conversation.escalated_at or conversation.opened_at


def reached_people(conversation: Any) -> bool:
    """People had the conversation (escalated, claimed, or answered by an agent)."""
    return bool(
        conversation.sla_started_at or conversation.escalated_at or conversation.first_response_at
    )


def people_since_expression() -> Coalesce:
    """``people_since`` as an SQL expression (for aggregates over many rows)."""
    return Coalesce("sla_started_at", "escalated_at", "opened_at")


def reached_people_q() -> Q:
    """``reached_people`` as a condition."""
    return (
        Q(sla_started_at__isnull=False)
        | Q(escalated_at__isnull=False)
        | Q(first_response_at__isnull=False)
    )


def anatel_due_at(*, opened_at: datetime, request_kind: str) -> datetime | None:
    """The legal deadline of the demand (None while its kind is unknown)."""
    if not request_kind:
        return None
    return sac_deadline(opened_at=opened_at, kind=request_kind).due_at


# --- reading: breaches and near-due, as SQL conditions ---------------------------------------


def first_response_breach_q(now: datetime) -> Q:
    """The first human answer came late, or has not come and is overdue (a conversation closed
    without one counts at its close)."""
    return (
        Q(first_response_at__isnull=False, first_response_at__gt=F("first_response_due_at"))
        | Q(
            first_response_at__isnull=True,
            closed_at__isnull=False,
            closed_at__gt=F("first_response_due_at"),
        )
        | Q(first_response_at__isnull=True, closed_at__isnull=True, first_response_due_at__lt=now)
    )


def resolution_breach_q(now: datetime) -> Q:
    return Q(closed_at__isnull=False, closed_at__gt=F("resolution_due_at")) | Q(
        closed_at__isnull=True, resolution_due_at__lt=now
    )


def anatel_breach_q(now: datetime) -> Q:
    return Q(closed_at__isnull=False, closed_at__gt=F("anatel_due_at")) | Q(
        closed_at__isnull=True, anatel_due_at__lt=now
    )


def breach_q(now: datetime) -> Q:
    """Any of the three clocks breached (open or closed conversations)."""
    return first_response_breach_q(now) | resolution_breach_q(now) | anatel_breach_q(now)


def _windows(within: timedelta | None, anatel_within: timedelta | None):
    if within is None:
        within = timedelta(minutes=getattr(settings, "SLA_NEAR_DUE_MINUTES", 30))
    if anatel_within is None:
        anatel_within = timedelta(hours=getattr(settings, "SLA_ANATEL_NEAR_DUE_HOURS", 24))
    return within, anatel_within


def near_due_q(
    now: datetime,
    *,
    within: timedelta | None = None,
    anatel_within: timedelta | None = None,
) -> Q:
    """Open, not breached, and a pending clock ends soon (windows default to the settings)."""
    within, anatel_within = _windows(within, anatel_within)
    soon = (
        Q(first_response_at__isnull=True, first_response_due_at__lte=now + within)
        | Q(resolution_due_at__lte=now + within)
        | Q(anatel_due_at__lte=now + anatel_within)
    )
    return _OPEN & soon & ~breach_q(now)


def _flag(condition: Q) -> Case:
    return Case(
        When(condition, then=Value(True)), default=Value(False), output_field=BooleanField()
    )


def _pending(field: str, condition: Q) -> Case:
    return Case(
        When(condition & Q(**{f"{field}__isnull": False}), then=F(field)),
        default=Value(_FAR_FUTURE),
        output_field=DateTimeField(),
    )


def annotate(queryset: QuerySet[Conversation], now: datetime) -> QuerySet[Conversation]:
    """Add, in the same query: ``sla_first_response_breached``, ``sla_resolution_breached``,
    ``sla_anatel_breached``, ``sla_breached``, ``sla_near_due`` (booleans) and
    ``sla_next_due_at`` (the earliest clock still running; None when none is)."""
    next_due = Least(
        _pending("first_response_due_at", _OPEN & Q(first_response_at__isnull=True)),
        _pending("resolution_due_at", _OPEN),
        _pending("anatel_due_at", _OPEN),
    )
    return queryset.annotate(_next_due=next_due).annotate(
        sla_first_response_breached=_flag(first_response_breach_q(now)),
        sla_resolution_breached=_flag(resolution_breach_q(now)),
        sla_anatel_breached=_flag(anatel_breach_q(now)),
        sla_breached=_flag(breach_q(now)),
        sla_near_due=_flag(near_due_q(now)),
        sla_next_due_at=Case(
            When(_next_due__lt=_FAR_FUTURE, then=F("_next_due")),
            default=Value(None),
            output_field=DateTimeField(),
        ),
    )


def breaching(
    queryset: QuerySet[Conversation],
    now: datetime,
    *,
    include_near_due: bool = False,
) -> QuerySet[Conversation]:
    """Open conversations of ``queryset`` with a clock past due (plus, with
    ``include_near_due``, those about to be), annotated as by ``annotate``, most urgent first
    (earliest running clock). One query when evaluated; ``select_related`` what you display.

    Signature: ``breaching(queryset: QuerySet[Conversation], now: datetime, *,
    include_near_due: bool = False) -> QuerySet[Conversation]``. Pass the queryset the caller
    may see (e.g. a supervisor's teams) and one ``now`` for the whole page.
    """
    condition = _OPEN & breach_q(now)
    if include_near_due:
        condition |= near_due_q(now)
    return annotate(queryset.filter(condition), now).order_by(
        F("sla_next_due_at").asc(nulls_last=True), "opened_at", "pk"
    )


@dataclass(frozen=True)
class SlaSummary:
    """Figures about one team's open conversations at one moment."""

    team_id: int | None
    open: int = 0
    waiting: int = 0
    breached: int = 0
    first_response_breached: int = 0
    resolution_breached: int = 0
    anatel_breached: int = 0
    near_due: int = 0
    unclassified: int = 0  # no request kind yet, so no Anatel deadline
    oldest_waiting_since: datetime | None = None


def sla_summary(teams: Iterable[Team | int | None], now: datetime) -> dict[int | None, SlaSummary]:
    """SLA figures of the open conversations of ``teams``, in one query.

    Signature: ``sla_summary(teams: Iterable[Team | int | None], now: datetime) ->
    dict[int | None, SlaSummary]``. ``teams`` are Team objects or ids; ``None`` stands for the
    conversations without a team. The result has one entry per team asked for, in that order,
    with zeros when it has no open conversation. ``breached`` counts conversations with any
    clock past due (a conversation breaching two clocks counts once there, and once in each
    per-clock figure); ``near_due`` as ``near_due_q`` with the settings' windows.
    """
    keys: list[int | None] = []
    for team in teams:
        key = team.pk if isinstance(team, Team) else team
        if key not in keys:
            keys.append(key)
    result: dict[int | None, SlaSummary] = {key: SlaSummary(team_id=key) for key in keys}
    if not keys:
        return result
    ids = [k for k in keys if k is not None]
    scope = Q(team_id__in=ids) if ids else Q(pk__in=[])
    if None in keys:
        scope |= Q(team__isnull=True)
    waiting = Q(state=Conversation.State.WAITING)
    rows = (
        Conversation.objects.filter(_OPEN & scope)
        .values("team_id")
        .annotate(
            open=Count("pk"),
            waiting=Count("pk", filter=waiting),
            breached=Count("pk", filter=breach_q(now)),
            first_response_breached=Count("pk", filter=first_response_breach_q(now)),
            resolution_breached=Count("pk", filter=resolution_breach_q(now)),
            anatel_breached=Count("pk", filter=anatel_breach_q(now)),
            near_due=Count("pk", filter=near_due_q(now)),
            unclassified=Count("pk", filter=Q(request_kind="")),
            oldest_waiting_since=Min("waiting_since", filter=waiting),
        )
        .order_by()
    )
    for row in rows:
        key = row.pop("team_id")
        result[key] = SlaSummary(team_id=key, **row)
    return result


def row_status(conversation: Any) -> str:
    """ "breached", "near_due" or "ok" for a conversation annotated by ``annotate``."""
    if getattr(conversation, "sla_breached", False):
        return "breached"
    if getattr(conversation, "sla_near_due", False):
        return "near_due"
    return "ok"
