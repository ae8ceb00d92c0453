"""Series of the conversations core: conversations, messages, live events, agents, CSAT.

Most events are read from the rows the services already write, through ``post_save`` on
``ConversationEvent`` (every transition writes one) and ``Message`` (every message is created
once), and recorded on commit; the services call this module directly only where no row is
created (first response, delivery statuses, refusals). State gauges (conversations by state,
the waiting queue, the outbox, agents) are read on scrape (``ispsupport.metrics``).

Labels are bounded: message types, states, resolutions, reasons, priorities. Never a
customer, conversation or agent id.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.db.models import Count, Min, Sum
from django.db.models.signals import post_save
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily, Metric

from ispsupport.metrics import (
    CONVERSATION_BUCKETS,
    HUMAN_BUCKETS,
    LAG_BUCKETS,
    counter,
    gauge,
    histogram,
    label,
    on_commit,
    register_state_collector,
)

PRIORITIES = {0: "low", 1: "normal", 2: "high", 3: "urgent"}

CONVERSATIONS_OPENED = counter(
    "ispsupport_conversations_opened",
    "Conversations opened (each gets a protocol number).",
)
CONVERSATIONS_CLOSED = counter(
    "ispsupport_conversations_closed",
    "Conversations closed, by resolution.",
    ["resolution"],
)
CONVERSATION_DURATION = histogram(
    "ispsupport_conversation_duration_seconds",
    "From opening to closing, by resolution.",
    ["resolution"],
    buckets=CONVERSATION_BUCKETS,
)
CONVERSATIONS_ESCALATED = counter(
    "ispsupport_conversations_escalated",
    "Conversations handed from the bot to the humans' queue, by reason (bot:<reason>, "
    "stale_message…).",
    ["reason"],
)
CONVERSATIONS_ASSIGNED = counter(
    "ispsupport_conversations_assigned",
    "Assignments to an agent, by how (claim, manual, auto_least_loaded, auto_previous_agent…).",
    ["reason"],
)
CONVERSATIONS_RETURNED = counter(
    "ispsupport_conversations_returned_to_queue",
    "Assigned conversations sent back to the waiting queue, by reason (manual, agent_offline…).",
    ["reason"],
)
CONVERSATIONS_TRANSFERRED = counter(
    "ispsupport_conversations_transferred",
    "Conversations transferred to another team or agent.",
)
FIRST_RESPONSE = histogram(
    "ispsupport_conversation_first_response_seconds",
    "From reaching the humans' queue (escalation; opening when it skipped the bot) to the "
    "first agent message, by priority.",
    ["priority"],
    buckets=HUMAN_BUCKETS,
)
RESOLUTION_TIME = histogram(
    "ispsupport_conversation_resolution_seconds",
    "From reaching the humans' queue to closing, for conversations people handled, by resolution.",
    ["resolution"],
    buckets=CONVERSATION_BUCKETS,
)
MESSAGES_INBOUND = counter(
    "ispsupport_messages_inbound",
    "Customer messages stored, by WhatsApp type (text, image, audio, interactive…).",
    ["type"],
    initial=[("text",)],
)
MESSAGES_OUTBOUND = counter(
    "ispsupport_messages_outbound",
    "Replies queued in the outbox, by type and sender (agent, bot, system).",
    ["type", "sender"],
)
INBOUND_LATENCY = histogram(
    "ispsupport_message_inbound_latency_seconds",
    "From the customer sending (Meta's timestamp, whole seconds) to the message being stored.",
    buckets=LAG_BUCKETS,
)
STATUS_UPDATES = counter(
    "ispsupport_message_status_updates",
    "Delivery states reached by outbound messages (sent, delivered, read, played, failed).",
    ["status"],
    initial=[(s,) for s in ("sent", "delivered", "read", "failed")],
)
WINDOW_REFUSALS = counter(
    "ispsupport_whatsapp_window_refusals",
    "Free-form messages refused because the 24-hour window was closed: by us before sending "
    "(local) or by Meta (meta, code 131047).",
    ["source"],
    initial=[("local",), ("meta",)],
)
LIVE_EVENTS = counter(
    "ispsupport_live_events_published",
    "Live events sent to the console's WebSocket groups, by kind.",
    ["kind"],
)
LIVE_EVENT_FAILURES = counter(
    "ispsupport_live_event_failures",
    "Live events that could not be stored or sent (the console catches up later), by stage.",
    ["stage"],
    initial=[("store",), ("send",)],
)
CONSOLE_SOCKETS = gauge(
    "ispsupport_console_websockets",
    "Console WebSockets open right now; summed over processes.",
)
CSAT_SURVEYS = counter(
    "ispsupport_csat_surveys_sent",
    "Satisfaction surveys queued at closing (at most one per conversation).",
)
CSAT_SCORE = histogram(
    "ispsupport_csat_score",
    "Customer satisfaction ratings (1-5); _count is the number of answers, _sum/_count the "
    "average.",
    buckets=(1, 2, 3, 4, 5),
)


# --- Recorders the services call --------------------------------------------------------------


def first_response(*, conversation: Any, at: datetime) -> None:
    """The first agent message of ``conversation`` was queued at ``at``; counted from when the
    conversation first reached people (``sla.people_since``, the SLA clock's start)."""
    from conversations import sla

    since = sla.people_since(conversation)
    if since is None:
        return
    seconds = max(0.0, (at - since).total_seconds())
    priority = PRIORITIES.get(conversation.priority, label(conversation.priority))
    on_commit(lambda: FIRST_RESPONSE.labels(priority=priority).observe(seconds))


def status_reached(status: str) -> None:
    on_commit(lambda: STATUS_UPDATES.labels(status=label(status)).inc())


def window_refused(*, source: str) -> None:
    WINDOW_REFUSALS.labels(source=source).inc()


def live_event(kind: str) -> None:
    LIVE_EVENTS.labels(kind=label(kind)).inc()


def live_event_failed(stage: str) -> None:
    LIVE_EVENT_FAILURES.labels(stage=stage).inc()


def csat_survey_sent() -> None:
    on_commit(CSAT_SURVEYS.inc)


def csat_rated(score: int) -> None:
    """A customer's satisfaction answer was stored (the CSAT service calls this once per answer,
    inside its transaction; recorded on commit)."""
    if 1 <= int(score) <= 5:
        on_commit(lambda: CSAT_SCORE.observe(int(score)))


# --- Receivers: rows the services write -------------------------------------------------------


def _seconds(end: datetime | None, start: datetime | None) -> float | None:
    if end is None or start is None:
        return None
    return max(0.0, (end - start).total_seconds())


def _on_event(sender: Any, instance: Any, created: bool, **_kwargs: Any) -> None:
    if not created:
        return
    kind = instance.kind
    reason = label((instance.data or {}).get("reason"), default="unknown")
    if kind == "opened":
        on_commit(CONVERSATIONS_OPENED.inc)
    elif kind == "escalated":
        on_commit(lambda: CONVERSATIONS_ESCALATED.labels(reason=reason).inc())
    elif kind == "assigned":
        on_commit(lambda: CONVERSATIONS_ASSIGNED.labels(reason=reason).inc())
    elif kind == "unassigned":
        on_commit(lambda: CONVERSATIONS_RETURNED.labels(reason=reason).inc())
    elif kind == "transferred":
        on_commit(CONVERSATIONS_TRANSFERRED.inc)
    elif kind == "closed":
        _on_closed(instance.conversation)


def _on_closed(conversation: Any) -> None:
    from conversations import sla

    resolution = label(conversation.resolution, default="unknown")
    closed_at = conversation.closed_at or timezone.now()
    duration = _seconds(closed_at, conversation.opened_at)
    # The SLA's resolution: from when people first had it, for conversations people had.
    resolution_time = (
        _seconds(closed_at, sla.people_since(conversation))
        if sla.reached_people(conversation)
        else None
    )

    def record() -> None:
        CONVERSATIONS_CLOSED.labels(resolution=resolution).inc()
        if duration is not None:
            CONVERSATION_DURATION.labels(resolution=resolution).observe(duration)
        if resolution_time is not None:
            RESOLUTION_TIME.labels(resolution=resolution).observe(resolution_time)

    on_commit(record)


def _on_message(sender: Any, instance: Any, created: bool, **_kwargs: Any) -> None:
    from conversations.models import Message

    if not created:
        return
    kind = label(instance.type, default="unknown")
    if instance.direction == Message.Direction.INBOUND:
        latency = _seconds(timezone.now(), instance.whatsapp_timestamp)

        def record() -> None:
            MESSAGES_INBOUND.labels(type=kind).inc()
            if latency is not None:
                INBOUND_LATENCY.observe(latency)

        on_commit(record)
    else:
        sender_kind = label(instance.sender_kind, default="unknown")
        on_commit(lambda: MESSAGES_OUTBOUND.labels(type=kind, sender=sender_kind).inc())


# --- State read on scrape ---------------------------------------------------------------------


def _sla_breaches(now: datetime) -> dict[str, int]:
    """Open conversations past each clock, with ``conversations.sla``'s own conditions (the
    admin's "SLA vencido" filter and the dashboard's SLA tile use the same ones)."""
    from conversations import sla
    from conversations.models import Conversation

    conditions = {
        "first_response": sla.first_response_breach_q,
        "resolution": sla.resolution_breach_q,
        "anatel": sla.anatel_breach_q,
    }
    return Conversation.objects.filter(state__in=Conversation.OPEN_STATES).aggregate(
        **{target: Count("pk", filter=condition(now)) for target, condition in conditions.items()}
    )


def _collect_state() -> Iterable[Metric]:
    from accounts.models import Presence, Role, User
    from conversations.models import Conversation, Message

    now = timezone.now()
    by_state = GaugeMetricFamily(
        "ispsupport_conversations_open",
        "Open conversations by state (bot, waiting, assigned).",
        labels=["state"],
    )
    counts = dict(
        Conversation.objects.filter(state__in=["bot", "waiting", "assigned"])
        .values_list("state")
        .annotate(n=Count("pk"))
        .values_list("state", "n")
    )
    for state in ("bot", "waiting", "assigned"):
        by_state.add_metric([state], counts.get(state, 0))
    yield by_state

    oldest = Conversation.objects.filter(state="waiting").aggregate(m=Min("waiting_since"))["m"]
    yield GaugeMetricFamily(
        "ispsupport_conversations_waiting_oldest_seconds",
        "How long the longest-waiting conversation of the humans' queue has waited (0: none).",
        value=_seconds(now, oldest) or 0.0,
    )

    pending = Message.objects.filter(
        status=Message.Status.PENDING, direction=Message.Direction.OUTBOUND
    ).aggregate(n=Count("pk"), oldest=Min("created_at"))
    yield GaugeMetricFamily(
        "ispsupport_outbox_pending",
        "Outbound messages waiting to be accepted by Meta (the outbox backlog).",
        value=pending["n"] or 0,
    )
    yield GaugeMetricFamily(
        "ispsupport_outbox_oldest_pending_seconds",
        "Age of the oldest message still in the outbox (0: empty).",
        value=_seconds(now, pending["oldest"]) or 0.0,
    )

    agents = GaugeMetricFamily(
        "ispsupport_agents",
        "Active agents and supervisors by presence (online, away, offline).",
        labels=["presence"],
    )
    staff = User.objects.filter(is_active=True, groups__name__in=[Role.AGENT, Role.SUPERVISOR])
    presence = dict(
        staff.values_list("presence")
        .annotate(n=Count("pk", distinct=True))
        .values_list("presence", "n")
    )
    for value in Presence.values:
        agents.add_metric([value], presence.get(value, 0))
    yield agents
    capacity = (
        User.objects.filter(pk__in=staff.filter(presence=Presence.ONLINE).values("pk")).aggregate(
            total=Sum("max_concurrent_conversations")
        )["total"]
        or 0
    )
    yield GaugeMetricFamily(
        "ispsupport_agents_online_capacity",
        "Conversations the online agents can hold at once (sum of their capacities); compare "
        'with ispsupport_conversations_open{state="assigned"}.',
        value=capacity,
    )

    breached = GaugeMetricFamily(
        "ispsupport_conversations_sla_breached",
        "Open conversations past an SLA clock, by clock (first_response, resolution, anatel: "
        "the demand's legal deadline).",
        labels=["target"],
    )
    for target, count in sorted(_sla_breaches(now).items()):
        breached.add_metric([label(target)], count or 0)
    yield breached


def connect() -> None:
    """Connect the receivers and the scrape-time collector (``AppConfig.ready``)."""
    from conversations.models import Conversation, ConversationEvent, Message

    post_save.connect(_on_event, sender=ConversationEvent, dispatch_uid="metrics.conv_event")
    post_save.connect(_on_message, sender=Message, dispatch_uid="metrics.message")
    register_state_collector("conversations", _collect_state)
    for resolution in Conversation.Resolution.values:
        CONVERSATIONS_CLOSED.labels(resolution=resolution)
