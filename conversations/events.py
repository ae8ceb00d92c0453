"""Live events for the console: the one module that touches the channel layer.

Services call the ``publish_*`` functions; each one sends only after the surrounding
transaction commits (``transaction.on_commit``) and only to the audience computed here:

- ``conversation_audience``: who may see a conversation. It must match
  ``selectors.conversation_visibility_q`` (a test checks both agree): the conversation's team
  group (or the "no team" group), its assigned agent's own group, and the admins' group.
- ``presence_audience``: supervisors and admins.
- ``user_groups``: the groups a user's socket joins.
- ``GROUP_DASHBOARD``: sockets of supervisors and admins that subscribed to the dashboard
  (the consumer checks the role); they hear ``dashboard.changed`` — no data at all, the page
  refetches its own figures — at most once per ``DASHBOARD_PUSH_INTERVAL_SECONDS``.

An event carries ids and states, never customer text; the console fetches the partial it needs
through a permission-checked view. ``data.request_id`` is the request id current when the
service published (``ispsupport.requestid``): the same id as the webhook request and the Celery
tasks' log lines that led to it. Each event is stored (``LiveEvent``) before it is sent, and
its id is the sequence a reconnecting socket resumes from. Typing notices are ephemeral: no
sequence, not stored.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import Role
from conversations import metrics
from ispsupport import requestid

logger = logging.getLogger(__name__)

GROUP_ADMINS = "console.all"
GROUP_NO_TEAM = "console.noteam"
GROUP_SUPERVISORS = "console.supervisors"
GROUP_DASHBOARD = "console.dashboard"
DASHBOARD_THROTTLE_KEY = "console:dashboard:notified"
HANDLER = "console.event"  # the consumer method ``console_event``
HANDLER_MANY = "console.events"  # several events for one group at once: ``console_events``


def group_for_team(team_id: int) -> str:
    return f"console.team.{team_id}"


def group_for_agent(user_id: Any) -> str:
    return f"console.agent.{str(user_id).replace('-', '')}"


def conversation_audience(*, team_id: int | None, assigned_agent_id: Any | None) -> set[str]:
    """The groups allowed to hear about a conversation with this team and agent."""
    groups = {GROUP_ADMINS, group_for_team(team_id) if team_id else GROUP_NO_TEAM}
    if assigned_agent_id:
        groups.add(group_for_agent(assigned_agent_id))
    return groups


def presence_audience() -> set[str]:
    return {GROUP_SUPERVISORS, GROUP_ADMINS}


def user_groups(user: Any) -> list[str]:
    """The groups a console user's socket joins (see ``conversation_audience``)."""
    groups = [group_for_agent(user.pk)]
    if user.has_role(Role.ADMIN):
        groups.append(GROUP_ADMINS)
    else:
        groups.append(GROUP_NO_TEAM)
        groups.extend(group_for_team(pk) for pk in user.teams.values_list("pk", flat=True))
    if user.has_role(Role.SUPERVISOR, Role.ADMIN):
        groups.append(GROUP_SUPERVISORS)
    return groups


def audience_filter(groups: Iterable[str]) -> Q:
    """A ``LiveEvent`` filter matching events sent to any of ``groups``."""
    query = Q(pk__in=[])
    for group in groups:
        query |= Q(audience__contains=f" {group} ")
    return query


# --- publishing -------------------------------------------------------------------------------

_local = threading.local()


class _Batch:
    """Events published inside one ``publishing_batch`` block, delivered together."""

    def __init__(self) -> None:
        self.pending: list[_Due] = []
        self.delivered = False

    def due(self, event: _Due) -> None:
        if self.delivered:
            _deliver([event])
        else:
            self.pending.append(event)

    def deliver(self) -> None:
        self.delivered = True
        pending, self.pending = self.pending, []
        _deliver(pending)


@contextmanager
def publishing_batch() -> Iterator[None]:
    """Events published inside the block are stored and sent together, once their
    transactions committed: one query for their audiences, one INSERT, one channel-layer
    message per group. For work that publishes many events (the webhook drain); outside such
    a block every event goes out as soon as its transaction commits.

    Wrap the transaction (``with publishing_batch(), transaction.atomic(): …``): the events go
    out when the block ends, or, inside a transaction that is still open (a caller's, a
    test's), after it commits — still after every event of the block, in order.
    """
    outer = getattr(_local, "batch", None)
    batch = _local.batch = _Batch()
    try:
        yield
    finally:
        _local.batch = outer
        if connection.in_atomic_block:
            transaction.on_commit(batch.deliver)
        else:
            batch.deliver()


@dataclass(slots=True)
class _Due:
    """An event whose transaction committed, not stored yet (audience read when stored)."""

    kind: str
    conversation_id: int | None
    data: dict[str, Any]
    also_to: set[str] = field(default_factory=set)
    groups: set[str] | None = None  # fixed audience (presence); None: the conversation's


def _on_commit(event: _Due) -> None:
    """Deliver ``event`` after the current transaction commits (with its batch, if any)."""
    batch = getattr(_local, "batch", None)
    if batch is None:
        transaction.on_commit(lambda: _deliver([event]))
    else:
        transaction.on_commit(lambda: batch.due(event))


def _deliver(due: list[_Due]) -> None:
    """Store ``due`` events (their ids are the sequence) and send them to their audiences."""
    from conversations.models import Conversation, LiveEvent

    if not due:
        return
    ids = {e.conversation_id for e in due if e.groups is None and e.conversation_id is not None}
    rows = {
        row["id"]: row
        for row in Conversation.objects.filter(pk__in=ids).values(
            "id", "team_id", "assigned_agent_id", "state"
        )
    }
    now = timezone.now()
    planned: list[tuple[_Due, set[str], Any]] = []
    for event in due:
        groups = event.groups
        if groups is None:
            row = rows.get(event.conversation_id)
            if row is None:
                continue
            event.data.setdefault("state", row["state"])
            event.data.setdefault("team_id", row["team_id"])
            agent = row["assigned_agent_id"]
            event.data.setdefault("assigned_agent_id", str(agent) if agent else None)
            groups = (
                conversation_audience(team_id=row["team_id"], assigned_agent_id=agent)
                | event.also_to
            )
        live = LiveEvent(
            audience=" " + " ".join(sorted(groups)) + " ",
            kind=event.kind,
            conversation_id=event.conversation_id,
            data=event.data,
            created_at=now,
        )
        planned.append((event, groups, live))
    if not planned:
        return
    try:
        LiveEvent.objects.bulk_create([live for _event, _groups, live in planned])
    except Exception:
        for _planned in planned:
            metrics.live_event_failed("store")
        logger.exception("events: could not store live events", extra={"count": len(planned)})
        return
    by_group: dict[str, list[dict[str, Any]]] = {}
    for event, groups, live in planned:
        metrics.live_event(event.kind)
        serialized = serialize(live)
        for group in groups:
            by_group.setdefault(group, []).append(serialized)
    _layer_send_many(by_group)
    if any(e.kind.startswith("conversation.") or e.kind == "presence" for e, _g, _l in planned):
        notify_dashboard()


def _layer_send(groups: Iterable[str], event: dict[str, Any]) -> None:
    _layer_send_many({group: [event] for group in groups})


def _layer_send_many(by_group: dict[str, list[dict[str, Any]]]) -> None:
    """One trip into the channel layer for everything: a group hears its events in order, in
    one message when there are several (``console.events``)."""
    layer = get_channel_layer()
    if layer is None or not by_group:
        return

    async def send_all() -> None:
        for group in sorted(by_group):
            sent = by_group[group]
            message = (
                {"type": HANDLER, "event": sent[0]}
                if len(sent) == 1
                else {"type": HANDLER_MANY, "events": sent}
            )
            try:
                await layer.group_send(group, message)
            except Exception:
                # A lost live event is recovered by the catch-up; never fail the caller for it.
                metrics.live_event_failed("send")
                logger.exception("events: group_send failed", extra={"group": group})

    async_to_sync(send_all)()


def serialize(row: Any) -> dict[str, Any]:
    return {
        "seq": row.pk,
        "kind": row.kind,
        "conversation_id": row.conversation_id,
        "data": row.data,
        "at": row.created_at.isoformat(),
    }


def publish_conversation(
    *,
    conversation_id: int,
    kind: str,
    data: dict[str, Any] | None = None,
    also_to: Iterable[str] = (),
    request_id: str = "",
) -> None:
    """After commit, tell everyone who may see the conversation (read fresh at that moment).

    ``also_to``: groups that could see it before the change (a transfer out of a team), so
    their screens drop it. ``request_id``: the request that led to it, when it is not the
    current one (a batch applies events of many requests at once).
    """
    payload = dict(data or {})
    if rid := request_id or requestid.get():
        payload.setdefault("request_id", rid)
    _on_commit(_Due(kind=kind, conversation_id=conversation_id, data=payload, also_to=set(also_to)))


def publish_presence(*, user_id: Any, presence: str) -> None:
    """After commit, tell supervisors and admins that an agent's presence changed."""
    data = {"user_id": str(user_id), "presence": presence}
    if rid := requestid.get():
        data["request_id"] = rid
    _on_commit(_Due(kind="presence", conversation_id=None, data=data, groups=presence_audience()))


def notify_dashboard() -> None:
    """Tell the dashboards that a figure may have changed (call after commit).

    Throttled across processes with one cache key: at most one notice per
    ``DASHBOARD_PUSH_INTERVAL_SECONDS``. Nothing is lost in a quiet interval: the page fetches
    once more an interval after every notice it gets, and every minute anyway (waits grow).
    The notice carries no figures and no ids, so one group serves every dashboard whatever
    the teams its viewer may see.
    """
    interval = int(getattr(settings, "DASHBOARD_PUSH_INTERVAL_SECONDS", 2))
    if interval > 0:
        try:
            if not cache.add(DASHBOARD_THROTTLE_KEY, 1, timeout=interval):
                return
        except Exception:
            logger.warning("events: cache unavailable, dashboard notice not throttled")
    _layer_send(
        {GROUP_DASHBOARD},
        {
            "seq": None,
            "kind": "dashboard.changed",
            "conversation_id": None,
            "data": {"interval": interval},
            "at": timezone.now().isoformat(),
        },
    )


def publish_typing(*, conversation: Any, user: Any) -> None:
    """Ephemeral: another agent is typing in this conversation (collision warning)."""
    groups = conversation_audience(
        team_id=conversation.team_id, assigned_agent_id=conversation.assigned_agent_id
    )
    name = user.get_full_name() or user.username
    _layer_send(
        groups,
        {
            "seq": None,
            "kind": "typing",
            "conversation_id": conversation.pk,
            "data": {"user_id": str(user.pk), "name": name},
            "at": timezone.now().isoformat(),
        },
    )


def catch_up_limit() -> int:
    return getattr(settings, "CONSOLE_CATCH_UP_MAX_EVENTS", 500)
