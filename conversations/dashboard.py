"""Reads for the supervisors' dashboard (``/console/dashboard/``) and its CSV export.

Every figure is an aggregate query (``COUNT``/``AVG``/``PERCENTILE_CONT`` with ``GROUP BY``)
over an indexed range of ``Conversation`` — never a Python loop over rows — so the page stays
fast with millions of messages (messages are not read at all):

- live: conversations by state now (``conv_state_queue``), the longest wait
  (``conv_waiting_order``), agents' presence and load (``presence_board``);
- opened in the period (``conv_opened_at``): volume by hour and by intent, escalation reasons,
  first-response time (first agent message − when people first had the conversation);
- closed in the period (``conv_closed_at``): closed count, bot containment, resolution time
  (close − when people first had it, for conversations people had), CSAT (answers are
  attributed to the day their conversation closed).

Both times start where the SLA clocks start (``sla.people_since``): the escalation, or a claim
straight from the bot; a return to the queue or a transfer does not restart them. The
Prometheus histograms of ``conversations.metrics`` observe the same durations.

Periods are whole São Paulo days (``settings.TIME_ZONE``); "today" and "by hour" are local.
Supervisors see the figures of their teams' conversations and those without a team (as in the
inbox); admins see everything. Percentiles are exact (linear interpolation, PostgreSQL's
``percentile_cont``); on SQLite the same value comes from two ordered ``OFFSET`` reads.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from django.db import connection
from django.db.models import (
    Aggregate,
    Avg,
    Count,
    DurationField,
    ExpressionWrapper,
    F,
    Min,
    Q,
    QuerySet,
)
from django.db.models.functions import ExtractHour, TruncDate
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import Presence, Role, SlaTarget, User
from conversations import access, hooks, selectors, sla
from conversations.models import Conversation

MAX_PERIOD_DAYS = 366
NOT_RATED = (Conversation.Resolution.SPAM, Conversation.Resolution.DUPLICATE)
BOT_RESOLVED = Q(resolution=Conversation.Resolution.RESOLVED_BY_BOT, escalated_at__isnull=True)


# --- period and scope -----------------------------------------------------------------------


class PeriodError(ValueError):
    """A period a person typed that cannot be used; ``message`` says why, in pt-BR."""

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


@dataclass(frozen=True)
class Period:
    """Whole local days, ``first`` to ``last`` inclusive."""

    first: date
    last: date

    @property
    def start(self) -> datetime:
        return _local_midnight(self.first)

    @property
    def end(self) -> datetime:
        """Exclusive: the midnight after ``last``."""
        return _local_midnight(self.last + timedelta(days=1))

    @property
    def days(self) -> list[date]:
        return [self.first + timedelta(days=n) for n in range((self.last - self.first).days + 1)]

    def includes_today(self) -> bool:
        return self.first <= timezone.localdate() <= self.last


def _local_midnight(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min), timezone.get_default_timezone())


def period_today() -> Period:
    today = timezone.localdate()
    return Period(today, today)


def period_parse(first: str | None, last: str | None) -> Period:
    """``?from=AAAA-MM-DD&to=AAAA-MM-DD`` (either may be missing: today / the same day).

    Raises ``PeriodError`` for a malformed date, ``to`` before ``from``, or more than
    ``MAX_PERIOD_DAYS`` days.
    """
    first, last = (first or "").strip(), (last or "").strip()
    if not first and not last:
        return period_today()
    try:
        start = date.fromisoformat(first) if first else None
        end = date.fromisoformat(last) if last else None
    except ValueError:
        raise PeriodError(_("Use datas no formato AAAA-MM-DD.")) from None
    start = start or end
    end = end or start
    assert start is not None and end is not None
    if end < start:
        raise PeriodError(_("A data final é anterior à inicial."))
    if (end - start).days + 1 > MAX_PERIOD_DAYS:
        raise PeriodError(
            _("O período pode ter no máximo %(days)d dias.") % {"days": MAX_PERIOD_DAYS}
        )
    return Period(start, end)


def dashboard_allowed(user: Any) -> bool:
    """Supervisors and admins (agents and the DPO are refused)."""
    return access.user_is_supervisor(user)


def _scope_q(user: User) -> Q:
    """The conversations whose figures the user sees: admins all; supervisors their teams'
    and those without a team (the inbox's rule, without "assigned to me")."""
    if user.has_role(Role.ADMIN):
        return Q()
    return Q(team_id__in=selectors.user_team_ids(user)) | Q(team__isnull=True)


def _conversations(user: User) -> QuerySet[Conversation]:
    return Conversation.objects.filter(_scope_q(user)).order_by()


# --- percentiles ----------------------------------------------------------------------------


class _PercentileCont(Aggregate):
    """PostgreSQL's ``percentile_cont(f) WITHIN GROUP (ORDER BY expr)`` (exact, interpolated)."""

    function = "PERCENTILE_CONT"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"

    def __init__(self, expression: Any, fraction: float, **extra: Any) -> None:
        if not 0 <= fraction <= 1:
            raise ValueError(fraction)
        super().__init__(
            expression, fraction=repr(float(fraction)), output_field=DurationField(), **extra
        )


def _duration(end: str, start: Any) -> ExpressionWrapper:
    return ExpressionWrapper(F(end) - start, output_field=DurationField())


@dataclass(frozen=True)
class Percentiles:
    count: int
    p50: float | None  # seconds
    p90: float | None


def _percentiles(
    qs: QuerySet, duration: ExpressionWrapper, *, count: int | None = None
) -> Percentiles:
    """p50 and p90 of ``duration`` over ``qs`` (seconds). ``count``: the rows of ``qs`` when an
    aggregate already counted them (spares SQLite's ``COUNT``)."""
    if connection.vendor == "postgresql":
        row = qs.aggregate(
            n=Count("pk"),
            p50=_PercentileCont(duration, 0.5),
            p90=_PercentileCont(duration, 0.9),
        )
        return Percentiles(row["n"], _seconds(row["p50"]), _seconds(row["p90"]))
    count = qs.count() if count is None else count
    if not count:
        return Percentiles(0, None, None)
    ordered = qs.annotate(_d=duration).order_by("_d").values_list("_d", flat=True)

    def at(fraction: float) -> float:
        position = fraction * (count - 1)
        low = math.floor(position)
        pair = [_seconds(v) or 0.0 for v in ordered[low : low + 2]]
        if len(pair) == 1 or position == low:
            return pair[0]
        return pair[0] + (pair[1] - pair[0]) * (position - low)

    return Percentiles(count, at(0.5), at(0.9))


def _percentiles_by_day(
    qs: QuerySet, duration: ExpressionWrapper, day_field: str, period: Period
) -> dict[date, Percentiles]:
    """The same per local day of ``day_field`` (one grouped query on PostgreSQL)."""
    if connection.vendor == "postgresql":
        rows = (
            qs.annotate(_day=TruncDate(day_field, tzinfo=timezone.get_default_timezone()))
            .values("_day")
            .annotate(
                n=Count("pk"),
                p50=_PercentileCont(duration, 0.5),
                p90=_PercentileCont(duration, 0.9),
            )
        )
        return {
            r["_day"]: Percentiles(r["n"], _seconds(r["p50"]), _seconds(r["p90"])) for r in rows
        }
    return {
        day: _percentiles(
            qs.filter(
                **{f"{day_field}__gte": _local_midnight(day)},
                **{f"{day_field}__lt": _local_midnight(day + timedelta(days=1))},
            ),
            duration,
        )
        for day in period.days
    }


def _seconds(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, timedelta):
        return value.total_seconds()
    return float(value) / 1_000_000  # SQLite hands durations over as microseconds


# --- the figures ----------------------------------------------------------------------------


@dataclass
class CsatSummary:
    requested: int = 0
    answered: int = 0
    average: float | None = None
    distribution: dict[int, int] = field(default_factory=lambda: dict.fromkeys(range(1, 6), 0))
    comments: int = 0

    @property
    def response_rate(self) -> float | None:
        return self.answered / self.requested * 100 if self.requested else None


@dataclass
class PeriodFigures:
    """What happened in a period (or one of its days)."""

    opened: int = 0
    escalated: int = 0
    closed: int = 0
    closed_rated: int = 0  # closed, spam and duplicates left out (containment's denominator)
    closed_by_bot: int = 0
    first_response: Percentiles = field(default_factory=lambda: Percentiles(0, None, None))
    resolution: Percentiles = field(default_factory=lambda: Percentiles(0, None, None))
    csat: CsatSummary = field(default_factory=CsatSummary)
    # Conversations that reached people in the period (``sla_started_at``) and, of those, how
    # many breached an SLA clock (``sla.breach_q``): the SLA tile's period figures.
    sla_started: int = 0
    sla_breached: int = 0

    @property
    def containment_rate(self) -> float | None:
        """Share (%) of the closed conversations the bot resolved without any human."""
        return self.closed_by_bot / self.closed_rated * 100 if self.closed_rated else None


def _opened_aggregates() -> dict[str, Any]:
    return {
        "opened": Count("pk"),
        "escalated": Count("escalated_at"),
        "answered": Count("first_response_at"),  # the first-response percentiles' rows
    }


def _closed_aggregates() -> dict[str, Any]:
    aggregates: dict[str, Any] = {
        "closed": Count("pk"),
        "closed_rated": Count("pk", filter=~Q(resolution__in=NOT_RATED)),
        "closed_by_bot": Count("pk", filter=BOT_RESOLVED),
        # the resolution percentiles' rows (``_resolved_by_people``)
        "resolved_by_people": Count(
            "pk", filter=~Q(resolution__in=NOT_RATED) & sla.reached_people_q()
        ),
        "csat_requested": Count("csat_requested_at"),
        "csat_answered": Count("csat_score"),
        "csat_average": Avg("csat_score"),
        "csat_comments": Count("csat_comment_at"),
    }
    for score in range(1, 6):
        aggregates[f"csat_{score}"] = Count("pk", filter=Q(csat_score=score))
    return aggregates


def _fill(figures: PeriodFigures, opened: dict[str, Any], closed: dict[str, Any]) -> None:
    figures.opened = opened.get("opened") or 0
    figures.escalated = opened.get("escalated") or 0
    figures.closed = closed.get("closed") or 0
    figures.closed_rated = closed.get("closed_rated") or 0
    figures.closed_by_bot = closed.get("closed_by_bot") or 0
    average = closed.get("csat_average")
    figures.csat = CsatSummary(
        requested=closed.get("csat_requested") or 0,
        answered=closed.get("csat_answered") or 0,
        average=float(average) if average is not None else None,
        distribution={s: closed.get(f"csat_{s}") or 0 for s in range(1, 6)},
        comments=closed.get("csat_comments") or 0,
    )


def _first_response_duration() -> ExpressionWrapper:
    return _duration("first_response_at", sla.people_since_expression())


def _resolution_duration() -> ExpressionWrapper:
    return _duration("closed_at", sla.people_since_expression())


def _resolved_by_people(closed_qs: QuerySet) -> QuerySet:
    """The closed conversations whose resolution time counts: people had them, and they were
    a real service (spam and duplicates left out)."""
    return closed_qs.exclude(resolution__in=NOT_RATED).filter(sla.reached_people_q())


def _in_period(qs: QuerySet, field_name: str, period: Period) -> QuerySet:
    return qs.filter(**{f"{field_name}__gte": period.start, f"{field_name}__lt": period.end})


def _sla_aggregates(now: datetime) -> dict[str, Any]:
    return {"sla_started": Count("pk"), "sla_breached": Count("pk", filter=sla.breach_q(now))}


def period_figures(*, user: User, period: Period) -> PeriodFigures:
    """The period's totals (percentiles over the whole period, not averages of days)."""
    base = _conversations(user)
    opened_qs = _in_period(base, "opened_at", period)
    closed_qs = _in_period(base, "closed_at", period)
    figures = PeriodFigures()
    started = _in_period(base, "sla_started_at", period).aggregate(
        **_sla_aggregates(timezone.now())
    )
    figures.sla_started, figures.sla_breached = started["sla_started"], started["sla_breached"]
    opened = opened_qs.aggregate(**_opened_aggregates())
    closed = closed_qs.aggregate(**_closed_aggregates())
    _fill(figures, opened, closed)
    figures.first_response = _percentiles(
        opened_qs.filter(first_response_at__isnull=False),
        _first_response_duration(),
        count=opened["answered"] or 0,
    )
    figures.resolution = _percentiles(
        _resolved_by_people(closed_qs),
        _resolution_duration(),
        count=closed["resolved_by_people"] or 0,
    )
    return figures


def daily_figures(*, user: User, period: Period) -> list[tuple[date, PeriodFigures]]:
    """One ``PeriodFigures`` per day of the period (grouped queries; for the CSV export)."""
    tz = timezone.get_default_timezone()
    base = _conversations(user)
    opened_qs = _in_period(base, "opened_at", period)
    closed_qs = _in_period(base, "closed_at", period)
    opened = {
        r.pop("_day"): r
        for r in opened_qs.annotate(_day=TruncDate("opened_at", tzinfo=tz))
        .values("_day")
        .annotate(**_opened_aggregates())
    }
    closed = {
        r.pop("_day"): r
        for r in closed_qs.annotate(_day=TruncDate("closed_at", tzinfo=tz))
        .values("_day")
        .annotate(**_closed_aggregates())
    }
    first_response = _percentiles_by_day(
        opened_qs.filter(first_response_at__isnull=False),
        _first_response_duration(),
        "opened_at",
        period,
    )
    resolution = _percentiles_by_day(
        _resolved_by_people(closed_qs), _resolution_duration(), "closed_at", period
    )
    started = {
        r["_day"]: (r["sla_started"], r["sla_breached"])
        for r in _in_period(base, "sla_started_at", period)
        .annotate(_day=TruncDate("sla_started_at", tzinfo=tz))
        .values("_day")
        .annotate(**_sla_aggregates(timezone.now()))
    }
    days = []
    for day in period.days:
        figures = PeriodFigures()
        _fill(figures, opened.get(day, {}), closed.get(day, {}))
        figures.first_response = first_response.get(day, figures.first_response)
        figures.resolution = resolution.get(day, figures.resolution)
        figures.sla_started, figures.sla_breached = started.get(day, (0, 0))
        days.append((day, figures))
    return days


@dataclass(frozen=True)
class Labelled:
    key: str
    label: str
    count: int


@dataclass
class AgentsBoard:
    online: int
    away: int
    offline: int
    agents: list[User]  # with ``load`` (assigned conversations now)


@dataclass
class Snapshot:
    """Everything the dashboard shows, computed at ``generated_at``."""

    generated_at: datetime
    period: Period
    waiting: int
    longest_wait_seconds: float | None
    in_service: int
    with_bot: int
    figures: PeriodFigures
    by_hour: list[int]  # conversations opened per local hour of day (0–23)
    by_intent: list[Labelled]
    escalation_reasons: list[Labelled]
    agents: AgentsBoard
    sla: dict[str, Any] | None


def live_counts(*, user: User, now: datetime | None = None) -> dict[str, Any]:
    """Open conversations by state now, and how long the longest-waiting one has waited."""
    now = now or timezone.now()
    rows = (
        _conversations(user)
        .filter(state__in=Conversation.OPEN_STATES)
        .values("state")
        .annotate(n=Count("pk"), oldest=Min("waiting_since"))
    )
    by_state = {r["state"]: r for r in rows}
    waiting = by_state.get(Conversation.State.WAITING, {})
    oldest = waiting.get("oldest")
    return {
        "waiting": waiting.get("n", 0),
        "longest_wait_seconds": max(0.0, (now - oldest).total_seconds()) if oldest else None,
        "in_service": by_state.get(Conversation.State.ASSIGNED, {}).get("n", 0),
        "with_bot": by_state.get(Conversation.State.BOT, {}).get("n", 0),
    }


def volume_by_hour(*, user: User, period: Period) -> list[int]:
    rows = (
        _in_period(_conversations(user), "opened_at", period)
        .annotate(_hour=ExtractHour("opened_at", tzinfo=timezone.get_default_timezone()))
        .values("_hour")
        .annotate(n=Count("pk"))
    )
    hours = [0] * 24
    for row in rows:
        hours[row["_hour"]] = row["n"]
    return hours


def _labelled(kind: str, rows: Iterable[dict[str, Any]], key: str) -> list[Labelled]:
    items = []
    for row in rows:
        value = row[key] or ""
        if value:
            label = hooks.label(kind, value)
        elif kind == "intent":
            label = _("Não identificada")
        else:
            label = _("Sem motivo registrado")
        items.append(Labelled(value, label, row["n"]))
    return sorted(items, key=lambda item: (-item.count, item.label))


def volume_by_intent(*, user: User, period: Period) -> list[Labelled]:
    rows = (
        _in_period(_conversations(user), "opened_at", period)
        .values("intent")
        .annotate(n=Count("pk"))
    )
    return _labelled("intent", rows, "intent")


def escalation_reasons(*, user: User, period: Period) -> list[Labelled]:
    """Why conversations opened in the period left the bot for a person."""
    rows = (
        _in_period(_conversations(user), "opened_at", period)
        .filter(escalated_at__isnull=False)
        .values("escalation_reason")
        .annotate(n=Count("pk"))
    )
    return _labelled("escalation_reason", rows, "escalation_reason")


def agents_board(*, user: User) -> AgentsBoard:
    """Whoever may hold conversations (agents and supervisors of the user's teams; admins:
    all) by presence, each with their load now: the console's presence board
    (``selectors.presence_board``, one grouped query), busiest first within each presence."""
    agents = selectors.presence_board(user=user)
    order = {Presence.ONLINE: 0, Presence.AWAY: 1, Presence.OFFLINE: 2}
    agents.sort(key=lambda a: (order.get(a.presence, 3), -a.load))
    counts = {p: sum(1 for a in agents if a.presence == p) for p in order}
    return AgentsBoard(
        online=counts[Presence.ONLINE],
        away=counts[Presence.AWAY],
        offline=counts[Presence.OFFLINE],
        agents=agents,
    )


def dashboard_sla(
    *, user: User, period: Period, figures: PeriodFigures | None = None
) -> dict[str, Any] | None:
    """SLA figures for the tile (``conversations.sla``'s conditions): ``breaching_now`` (open
    conversations of the user's scope past a clock now: first response, resolution or the
    Anatel deadline), ``started`` (conversations that reached people in the period),
    ``breached`` (of those, how many breached a clock, open or closed), ``rate`` (breached ÷
    started, None without any) and ``configured`` (some SLA target exists).

    None only while nothing is measured: no SLA target and no Anatel deadline running or
    missed in the scope. The legal deadline of a classified demand runs without any target,
    so its breaches show (as on the SLA page and in ``ispsupport_conversations_sla_breached``).
    ``figures``: the period's (``period_figures``), when already read, for ``started`` and
    ``breached``. Two or three queries: the targets' existence and one or two aggregates."""
    if figures is None:
        figures = PeriodFigures()
        base = _in_period(_conversations(user), "sla_started_at", period)
        row = base.aggregate(**_sla_aggregates(timezone.now()))
        figures.sla_started, figures.sla_breached = row["sla_started"], row["sla_breached"]
    configured = SlaTarget.objects.exists()
    # Open conversations only (the state indexes), never a scan of every conversation ever.
    now_figures = (
        _conversations(user)
        .filter(state__in=Conversation.OPEN_STATES)
        .aggregate(
            breaching_now=Count("pk", filter=sla.breach_q(timezone.now())),
            anatel_running=Count("pk", filter=Q(anatel_due_at__isnull=False)),
        )
    )
    breaching_now = now_figures["breaching_now"] or 0
    started, breached = figures.sla_started, figures.sla_breached
    if not (configured or now_figures["anatel_running"] or breaching_now or breached):
        return None
    return {
        "breaching_now": breaching_now,
        "started": started,
        "breached": breached,
        "rate": breached / started if started else None,
        "configured": configured,
    }


def dashboard_snapshot(*, user: User, period: Period | None = None) -> Snapshot:
    """Everything the dashboard shows for ``user`` (about a dozen aggregate queries)."""
    period = period or period_today()
    now = timezone.now()
    live = live_counts(user=user, now=now)
    figures = period_figures(user=user, period=period)
    return Snapshot(
        generated_at=now,
        period=period,
        waiting=live["waiting"],
        longest_wait_seconds=live["longest_wait_seconds"],
        in_service=live["in_service"],
        with_bot=live["with_bot"],
        figures=figures,
        by_hour=volume_by_hour(user=user, period=period),
        by_intent=volume_by_intent(user=user, period=period),
        escalation_reasons=escalation_reasons(user=user, period=period),
        agents=agents_board(user=user),
        sla=dashboard_sla(user=user, period=period, figures=figures),
    )


def snapshot_as_json(snapshot: Snapshot) -> dict[str, Any]:
    """The snapshot for ``/console/dashboard/snapshot/`` (figures only, no personal data
    except the names of the user's own agents)."""
    figures = snapshot.figures

    def pct(p: Percentiles) -> dict[str, Any]:
        return {"count": p.count, "p50_seconds": p.p50, "p90_seconds": p.p90}

    return {
        "generated_at": snapshot.generated_at.isoformat(),
        "period": {
            "from": snapshot.period.first.isoformat(),
            "to": snapshot.period.last.isoformat(),
        },
        "now": {
            "waiting": snapshot.waiting,
            "longest_wait_seconds": snapshot.longest_wait_seconds,
            "in_service": snapshot.in_service,
            "with_bot": snapshot.with_bot,
        },
        "opened": figures.opened,
        "escalated": figures.escalated,
        "closed": figures.closed,
        "containment": {
            "closed_counted": figures.closed_rated,
            "resolved_by_bot": figures.closed_by_bot,
            "rate_percent": figures.containment_rate,
        },
        "first_response": pct(figures.first_response),
        "resolution": pct(figures.resolution),
        "csat": {
            "requested": figures.csat.requested,
            "answered": figures.csat.answered,
            "average": figures.csat.average,
            "distribution": {str(k): v for k, v in figures.csat.distribution.items()},
            "comments": figures.csat.comments,
        },
        "by_hour": snapshot.by_hour,
        "by_intent": [
            {"intent": i.key, "label": i.label, "count": i.count} for i in snapshot.by_intent
        ],
        "escalation_reasons": [
            {"reason": i.key, "label": i.label, "count": i.count}
            for i in snapshot.escalation_reasons
        ],
        "agents": {
            "online": snapshot.agents.online,
            "away": snapshot.agents.away,
            "offline": snapshot.agents.offline,
            "list": [
                {
                    "name": a.get_full_name() or a.username,
                    "presence": a.presence,
                    "load": a.load,
                    "capacity": a.max_concurrent_conversations,
                }
                for a in snapshot.agents.agents
            ],
        },
        "sla": snapshot.sla,
    }
