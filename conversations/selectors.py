"""Reads for customers and conversations (pages, APIs, exports): no N+1, no writes.

``conversation_visibility_q`` is the single place that encodes who may see which conversation;
the console views, the API and the live events (``events.conversation_audience``) agree with it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core import signing
from django.db.models import Q, QuerySet
from django.utils.dateparse import parse_datetime

from accounts.models import Role, User
from compliance.models import AccessLogEntry
from compliance.services import access_log_mark_seen, access_log_record, access_log_record_once
from conversations import access, events
from conversations.identity import customer_identity_q, customer_name_q, customers_by_identity
from conversations.models import (
    CannedResponse,
    Conversation,
    ConversationEvent,
    ConversationNote,
    Customer,
    LiveEvent,
    Message,
)

# --- existing reads ---------------------------------------------------------------------------


def customer_find_by_phone(*, phone: str) -> Customer | None:
    """Look a customer up by any spelling of their number (9th digit or not)."""
    return customers_by_identity(phone=phone, national=True).first()


def conversation_open_for_customer(*, customer: Customer) -> Conversation | None:
    return customer.conversations.exclude(state=Conversation.State.CLOSED).first()


def message_history(*, conversation: Conversation) -> QuerySet[Message]:
    """The conversation's messages in the order the customer and agents wrote them."""
    return conversation.messages.select_related("sender_user", "reply_to").order_by(
        "created_at", "pk"
    )


def conversation_history_for_staff(
    *, user: User, conversation: Conversation, ip: str | None, limit: int = 200
) -> list[Message]:
    """The newest ``limit`` messages of a conversation, oldest first, for a staff page that
    shows them (the supervisors' admin page); writes the personal-data access log
    (``view_conversation``) first, so a page that reveals a customer's messages never does so
    unrecorded. Call once per page view, after checking the user may see the conversation."""
    access_log_record(
        user=user,
        customer_id=conversation.customer_id,
        action=AccessLogEntry.Action.VIEW_CONVERSATION,
        ip=ip,
        object_type="conversation",
        object_id=conversation.pk,
        team_id=conversation.team_id,
    )
    rows = list(
        conversation.messages.select_related("sender_user").order_by("-created_at", "-pk")[:limit]
    )
    rows.reverse()
    return rows


def conversation_shown_to_staff(
    *,
    user: User,
    conversation: Conversation,
    ip: str | None,
    repeat: bool = False,
    action: str = AccessLogEntry.Action.VIEW_CONVERSATION,
    object_type: str = "conversation",
) -> None:
    """Write the personal-data access log for a page or API that shows ``conversation`` (its
    messages, its customer's name and number) to ``user``, after the visibility check.

    An explicit open (``repeat=False``: the console's conversation page) always writes a row.
    ``repeat=True`` is for what refreshes the same reading — the page's live partials, an
    integration polling the API — which writes one row per ``ACCESS_LOG_REPEAT_SECONDS``."""
    fields = {
        "user": user,
        "customer_id": conversation.customer_id,
        "action": action,
        "ip": ip,
        "object_type": object_type,
        "object_id": conversation.pk,
        "team_id": conversation.team_id,
    }
    if repeat:
        access_log_record_once(**fields)
        return
    access_log_record(**fields)
    access_log_mark_seen(
        user=user, action=action, object_type=object_type, object_id=conversation.pk
    )


def customer_shown_to_staff(
    *,
    user: User,
    customer: Customer,
    ip: str | None,
    action: str = AccessLogEntry.Action.VIEW_CUSTOMER,
) -> None:
    """The access log for an API answer that shows a customer's data (repeats: once per
    ``ACCESS_LOG_REPEAT_SECONDS``)."""
    access_log_record_once(
        user=user,
        customer_id=customer.pk,
        action=action,
        ip=ip,
        object_type="customer",
        object_id=customer.pk,
    )


# --- who may see what ---------------------------------------------------------------------------


def user_team_ids(user: User) -> list[int]:
    cached = getattr(user, "_console_team_ids", None)
    if cached is None:
        cached = list(user.teams.values_list("pk", flat=True))
        user._console_team_ids = cached
    return cached


def conversation_visibility_q(user: User) -> Q:
    """Conversations a user may see: admins all; agents and supervisors their teams' ones,
    conversations without a team, and any conversation assigned to them. Nobody else any."""
    if not access.user_may_use_console(user):
        return Q(pk__in=[])
    if user.has_role(Role.ADMIN):
        return Q()
    return Q(team_id__in=user_team_ids(user)) | Q(team__isnull=True) | Q(assigned_agent=user)


def conversations_visible_to(user: User) -> QuerySet[Conversation]:
    return Conversation.objects.filter(conversation_visibility_q(user))


def conversations_for_admin(user: User) -> QuerySet[Conversation]:
    """The conversations a user's admin pages list: the console's rule for agents and
    supervisors; everything for admins and the DPO (who reads them for data-subject requests;
    each page opened is in the access log)."""
    if user.is_superuser or user.has_role(Role.ADMIN, Role.DPO):
        return Conversation.objects.all()
    return conversations_visible_to(user)


def customers_for_admin(
    user: User, queryset: QuerySet[Customer] | None = None
) -> QuerySet[Customer]:
    """The customers a user's admin pages list (of ``queryset``): those with a conversation
    the user's admin pages show (``conversations_for_admin``); everyone for admins and the
    DPO."""
    qs = Customer.objects.all() if queryset is None else queryset
    if user.is_superuser or user.has_role(Role.ADMIN, Role.DPO):
        return qs
    return qs.filter(pk__in=conversations_for_admin(user).values("customer_id"))


def conversation_get_for_user(*, user: User, pk: Any) -> Conversation:
    """The conversation if the user may see it; ``Conversation.DoesNotExist`` otherwise (404,
    so ids of other teams' conversations are not confirmed)."""
    try:
        pk = int(pk)
    except (TypeError, ValueError):
        raise Conversation.DoesNotExist() from None
    return (
        conversations_visible_to(user)
        .select_related("customer", "team", "assigned_agent", "last_message")
        .get(pk=pk)
    )


# --- the inbox ----------------------------------------------------------------------------------


class Queue:
    WAITING = "waiting"
    MINE = "mine"
    TEAMS = "teams"
    ALL = "all"
    SEARCH = "search"


QUEUES = (Queue.WAITING, Queue.MINE, Queue.TEAMS, Queue.ALL)
_PAGE_MAX = 200
_COUNT_CAP = 100
_SIGNER_SALT = "conversations.inbox.cursor"


class InvalidCursor(ValueError):
    pass


def queues_for_user(user: User) -> tuple[str, ...]:
    if access.user_is_supervisor(user):
        return QUEUES
    return (Queue.WAITING, Queue.MINE, Queue.TEAMS)


@dataclass
class InboxPage:
    queue: str
    rows: list[Conversation]
    next_cursor: str | None
    search: str = ""
    counts: dict[str, int] = field(default_factory=dict)


def _queue_queryset(user: User, queue: str, search: str = "") -> QuerySet[Conversation]:
    base = conversations_visible_to(user)
    if search:
        return base.filter(_search_q(search))
    if queue == Queue.WAITING:
        return base.filter(state=Conversation.State.WAITING)
    if queue == Queue.MINE:
        return base.filter(state=Conversation.State.ASSIGNED, assigned_agent=user)
    if queue == Queue.TEAMS:
        open_ = base.exclude(state=Conversation.State.CLOSED)
        if user.has_role(Role.ADMIN) and not user_team_ids(user):
            return open_
        return open_.filter(team_id__in=user_team_ids(user))
    if queue == Queue.ALL:
        if not access.user_is_supervisor(user):
            return base.none()
        return base.exclude(state=Conversation.State.CLOSED)
    raise ValueError(queue)


def conversation_search_q(search: str) -> Q:
    """The console's search (protocol prefix, customer name, phone in any spelling) as a
    filter, for other pages that search conversations the same way (the admin)."""
    return _search_q(search)


def _search_q(search: str) -> Q:
    """Protocol number (prefix), whole words of the customer's name, phone (complete, any
    spelling) or CPF (complete).

    Names, phones and CPFs are encrypted: they are matched through their blind indexes
    (``conversations.identity``), so only whole name words and complete numbers can match.
    """
    term = search.strip()[:100]
    digits = re.sub(r"\D", "", term)
    query = Q(pk__in=[])
    if digits and len(digits) == len(re.sub(r"[\s().+-]", "", term)):
        query |= Q(protocol__startswith=digits)
        query |= customer_identity_q(phone=term, national=True, prefix="customer__")
        if len(digits) == 11 and not term.lstrip().startswith("+"):
            query |= customer_identity_q(cpf=digits, prefix="customer__")
    elif re.fullmatch(r"\d{3}\.\d{3}\.\d{3}-\d{2}", term):
        query |= customer_identity_q(cpf=term, prefix="customer__")
    name = customer_name_q(term, prefix="customer__")
    if name is not None:
        query |= name
    return query


def _ordering(queue: str, search: str) -> str:
    return "waiting" if (queue == Queue.WAITING and not search) else "activity"


def _encode_cursor(kind: str, row: Conversation) -> str:
    if kind == "waiting":
        values = [kind, row.priority, _iso(row.waiting_since), row.pk]
    else:
        values = [kind, _iso(row.last_message_at), row.pk]
    return signing.dumps(values, salt=_SIGNER_SALT, compress=True)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _decode_cursor(kind: str, cursor: str) -> list[Any]:
    try:
        values = signing.loads(cursor, salt=_SIGNER_SALT)
    except signing.BadSignature as exc:
        raise InvalidCursor() from exc
    if not isinstance(values, list) or not values or values[0] != kind:
        raise InvalidCursor()
    return values[1:]


def _after_cursor(kind: str, cursor: str) -> Q:
    values = _decode_cursor(kind, cursor)
    try:
        if kind == "waiting":
            priority, since_raw, pk = int(values[0]), values[1], int(values[2])
            since = parse_datetime(since_raw) if since_raw else None
            if since is None:
                # NULLs sort last: only later ids among the NULLs, then lower priorities.
                return Q(priority__lt=priority) | Q(
                    priority=priority, waiting_since__isnull=True, pk__gt=pk
                )
            return Q(priority__lt=priority) | Q(
                Q(priority=priority)
                & (
                    Q(waiting_since__gt=since)
                    | Q(waiting_since=since, pk__gt=pk)
                    | Q(waiting_since__isnull=True)
                )
            )
        at_raw, pk = values[0], int(values[1])
        at = parse_datetime(at_raw) if at_raw else None
        if at is None:
            return Q(last_message_at__isnull=True, pk__lt=pk)
        return Q(last_message_at__lt=at) | Q(last_message_at=at, pk__lt=pk)
    except (IndexError, TypeError, ValueError) as exc:
        raise InvalidCursor() from exc


def _order_by(kind: str) -> list[Any]:
    from django.db.models import F

    if kind == "waiting":
        return ["-priority", F("waiting_since").asc(nulls_last=True), "pk"]
    return ["-last_message_at", "-pk"]


# What an inbox row shows (and the API's list): fewer columns, fewer objects to build.
_ROW_FIELDS = (
    "id",
    "protocol",
    "state",
    "priority",
    "team_id",
    "assigned_agent_id",
    "customer_id",
    "opened_at",
    "waiting_since",
    "last_customer_message_at",
    "last_message_at",
    "template_required",
    "unread_count",
    "closed_at",
    "resolution",
    "csat_score",
    "last_message_id",
    "customer__id",
    "customer__name",
    "customer__phone_e164",
    "customer__username",
    "customer__cpf",
    "customer__contract_ref",
    "customer__status",
    "team__id",
    "team__name",
    "team__slug",
    "assigned_agent__id",
    "assigned_agent__username",
    "assigned_agent__first_name",
    "assigned_agent__last_name",
    "last_message__id",
    "last_message__direction",
    "last_message__sender_kind",
    "last_message__sender_user_id",
    "last_message__type",
    "last_message__text",
    "last_message__payload",
    "last_message__deleted_by_customer_at",
)


def conversation_list_for_user(
    *,
    user: User,
    queue: str = Queue.WAITING,
    search: str = "",
    cursor: str | None = None,
    limit: int = 50,
    filters: dict[str, Any] | None = None,
    with_counts: bool = False,
) -> InboxPage:
    """One page of a queue (keyset pagination: constant cost at any depth, no COUNT of it all).

    Queues: waiting (highest priority, then longest waiting), mine, teams, all (supervisors);
    ``search`` searches every conversation the user may see, closed ones included.
    ``counts`` (when asked) are capped at 99 (shown as "99+") so they stay cheap.
    Raises ``InvalidCursor`` for a tampered or foreign cursor and ``ValueError`` for an
    unknown queue.
    """
    search = (search or "").strip()
    if not search and queue not in QUEUES:
        raise ValueError(queue)
    limit = max(1, min(int(limit), _PAGE_MAX))
    kind = _ordering(queue, search)
    qs = _queue_queryset(user, queue, search)
    for name, value in (filters or {}).items():
        if value in (None, ""):
            continue
        if name == "state":
            qs = qs.filter(state=value)
        elif name == "team":
            qs = qs.filter(team_id=value)
        elif name == "priority":
            qs = qs.filter(priority=value)
        elif name == "assigned_agent":
            qs = qs.filter(assigned_agent_id=value)
        elif name == "protocol":
            qs = qs.filter(protocol=value)
    if cursor:
        qs = qs.filter(_after_cursor(kind, cursor))
    rows = list(
        qs.select_related("customer", "team", "assigned_agent", "last_message")
        .only(*_ROW_FIELDS)
        .order_by(*_order_by(kind))[: limit + 1]
    )
    next_cursor = _encode_cursor(kind, rows[limit - 1]) if len(rows) > limit else None
    page = InboxPage(queue=queue, rows=rows[:limit], next_cursor=next_cursor, search=search)
    if with_counts:
        page.counts = queue_counts(user=user)
    return page


def queue_counts(*, user: User) -> dict[str, int]:
    """Rows per queue, capped at 100 (one bounded query each)."""
    counts = {}
    for name in queues_for_user(user):
        if name == Queue.ALL:
            continue  # supervisors: the All tab shows no figure (it would always be 99+)
        counts[name] = _queue_queryset(user, name).values("pk")[:_COUNT_CAP].count()
    counts["mine_unread"] = (
        _queue_queryset(user, Queue.MINE)
        .filter(unread_count__gt=0)
        .values("pk")[:_COUNT_CAP]
        .count()
    )
    return counts


def conversation_in_queue(*, user: User, conversation_id: int, queue: str) -> bool:
    if queue not in QUEUES:
        return False
    return _queue_queryset(user, queue).filter(pk=conversation_id).exists()


# --- the conversation page ----------------------------------------------------------------------


@dataclass
class TimelineItem:
    kind: str  # "message", "event", "note"
    at: datetime
    obj: Any
    dom_id: str


@dataclass
class Timeline:
    items: list[TimelineItem]
    earlier_cursor: str | None
    reactions: dict[str, list[Message]]


_TIMELINE_SALT = "conversations.timeline.cursor"


def conversation_timeline(
    *,
    conversation: Conversation,
    limit: int = 100,
    before: str | None = None,
    since: datetime | None = None,
) -> Timeline:
    """Messages, system events and private notes of a conversation, oldest first.

    The newest ``limit`` messages (or those before the ``before`` cursor), with the events and
    notes of the same period; reactions are attached to their message, not listed. ``since``:
    only items at or after that time (live updates). A constant number of queries.
    """
    messages_qs = (
        conversation.messages.exclude(type=Message.Type.REACTION)
        .select_related("sender_user", "reply_to")
        .order_by("-created_at", "-pk")
    )
    if before:
        try:
            at_raw, pk = signing.loads(before, salt=_TIMELINE_SALT)
            at = parse_datetime(at_raw)
        except (signing.BadSignature, ValueError, TypeError) as exc:
            raise InvalidCursor() from exc
        messages_qs = messages_qs.filter(Q(created_at__lt=at) | Q(created_at=at, pk__lt=pk))
    if since is not None:
        messages_qs = messages_qs.filter(created_at__gte=since)
    page = list(messages_qs[: limit + 1])
    has_earlier = len(page) > limit and since is None
    page = list(reversed(page[:limit]))
    earlier_cursor = None
    lower: datetime | None = since
    upper: datetime | None = None
    if has_earlier and page:
        earlier_cursor = signing.dumps(
            [page[0].created_at.isoformat(), page[0].pk], salt=_TIMELINE_SALT
        )
        lower = page[0].created_at
    if before:
        upper = at
    range_q = Q()
    if lower is not None:
        range_q &= Q(created_at__gte=lower)
    if upper is not None:
        range_q &= Q(created_at__lt=upper)

    items = [TimelineItem("message", m.created_at, m, f"msg-{m.pk}") for m in page]
    events_qs = conversation.events.filter(range_q).select_related("actor")
    items += [TimelineItem("event", e.created_at, e, f"evt-{e.pk}") for e in events_qs]
    notes_qs = conversation.notes.filter(range_q).select_related("author")
    items += [TimelineItem("note", n.created_at, n, f"note-{n.pk}") for n in notes_qs]
    items.sort(key=lambda item: (item.at, item.kind != "message", item.obj.pk))

    reactions: dict[str, list[Message]] = {}
    wamids = {m.wamid for m in page if m.wamid}
    if wamids:
        reaction_qs = conversation.messages.filter(type=Message.Type.REACTION).order_by(
            "created_at", "pk"
        )
        for reaction in reaction_qs:
            target = (reaction.payload.get("reaction") or {}).get("message_id") or (
                reaction.context_wamid
            )
            if target in wamids:
                reactions.setdefault(target, []).append(reaction)
    for item in items:
        if item.kind == "message":
            item.obj.reaction_list = [
                r
                for r in reactions.get(item.obj.wamid or "", [])
                if (r.payload.get("reaction") or {}).get("emoji")
            ]
    return Timeline(items=items, earlier_cursor=earlier_cursor, reactions=reactions)


def message_get_for_user(*, user: User, pk: Any) -> Message:
    """A message whose conversation the user may see; ``Message.DoesNotExist`` otherwise."""
    try:
        pk = int(pk)
    except (TypeError, ValueError):
        raise Message.DoesNotExist() from None
    message = (
        Message.objects.filter(conversation__in=conversations_visible_to(user).values("pk"))
        .select_related("sender_user", "reply_to", "conversation")
        .get(pk=pk)
    )
    reactions = []
    if message.wamid:
        reactions = [
            r
            for r in Message.objects.filter(
                conversation_id=message.conversation_id, type=Message.Type.REACTION
            )
            if (r.payload.get("reaction") or {}).get("message_id") == message.wamid
            and (r.payload.get("reaction") or {}).get("emoji")
        ]
    message.reaction_list = reactions
    return message


def message_list_for_user(
    *, user: User, conversation: Conversation, cursor: str | None = None, limit: int = 50
) -> tuple[list[Message], str | None]:
    """Messages of a visible conversation, newest first, keyset-paginated (API)."""
    limit = max(1, min(int(limit), _PAGE_MAX))
    qs = conversation.messages.select_related("sender_user").order_by("-created_at", "-pk")
    if cursor:
        try:
            at_raw, pk = signing.loads(cursor, salt=_TIMELINE_SALT)
            at = parse_datetime(at_raw)
            if at is None:
                raise ValueError(at_raw)
        except (signing.BadSignature, ValueError, TypeError) as exc:
            raise InvalidCursor() from exc
        qs = qs.filter(Q(created_at__lt=at) | Q(created_at=at, pk__lt=pk))
    rows = list(qs[: limit + 1])
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = signing.dumps([last.created_at.isoformat(), last.pk], salt=_TIMELINE_SALT)
    return rows[:limit], next_cursor


def note_get_for_user(*, user: User, pk: Any) -> ConversationNote:
    return ConversationNote.objects.select_related("author").get(
        pk=int(pk), conversation__in=conversations_visible_to(user).values("pk")
    )


def event_get_for_user(*, user: User, pk: Any) -> ConversationEvent:
    return ConversationEvent.objects.select_related("actor").get(
        pk=int(pk), conversation__in=conversations_visible_to(user).values("pk")
    )


def customer_previous_conversations(
    *, user: User, conversation: Conversation, limit: int = 10
) -> list[Conversation]:
    """The customer's other conversations the user may see, newest first (sidebar)."""
    return list(
        conversations_visible_to(user)
        .filter(customer_id=conversation.customer_id)
        .exclude(pk=conversation.pk)
        .order_by("-opened_at")
        .only("pk", "protocol", "state", "opened_at", "resolution", "customer_id")[:limit]
    )


def customer_get_for_user(*, user: User, pk: Any) -> Customer:
    """A customer with at least one conversation the user may see (admins: any)."""
    try:
        pk = int(pk)
    except (TypeError, ValueError):
        raise Customer.DoesNotExist() from None
    qs = Customer.objects.filter(pk=pk)
    if not user.has_role(Role.ADMIN):
        qs = qs.filter(conversations__in=conversations_visible_to(user).values("pk")).distinct()
    if not access.user_may_use_console(user):
        raise Customer.DoesNotExist()
    return qs.get()


def customer_lookup_for_user(
    *, user: User, phone: str = "", protocol: str = "", cpf: str = ""
) -> list[Customer]:
    """Customers matching a phone (any spelling), protocol number or CPF, limited to those the
    user may see."""
    if not access.user_may_use_console(user):
        return []
    qs = Customer.objects.all()
    if phone:
        qs = qs.filter(customer_identity_q(phone=phone, national=True))
    if protocol:
        qs = qs.filter(conversations__protocol=protocol)
    if cpf:
        qs = qs.filter(customer_identity_q(cpf=cpf))
    if not (phone or protocol or cpf):
        return []
    if not user.has_role(Role.ADMIN):
        qs = qs.filter(conversations__in=conversations_visible_to(user).values("pk"))
    return list(qs.distinct().order_by("pk")[:20])


# --- canned responses ---------------------------------------------------------------------------


def canned_responses_for_user(
    *, user: User, conversation: Conversation | None = None
) -> list[CannedResponse]:
    """Active global responses plus those of the user's teams (and the conversation's team)."""
    team_ids = set(user_team_ids(user))
    if conversation is not None and conversation.team_id:
        team_ids.add(conversation.team_id)
    qs = CannedResponse.objects.filter(is_active=True).filter(
        Q(team__isnull=True) | Q(team_id__in=team_ids)
    )
    if user.has_role(Role.ADMIN):
        qs = CannedResponse.objects.filter(is_active=True)
    return list(qs.select_related("team").order_by("shortcut", "pk"))


def canned_render(*, body: str, conversation: Conversation | None, agent: User | None) -> str:
    """Fill ``{{nome}}``, ``{{protocolo}}``, ``{{atendente}}`` and ``{{empresa}}``."""
    customer_name = ""
    protocol = ""
    if conversation is not None:
        customer_name = (conversation.customer.name or "").split(" ")[0]
        protocol = conversation.protocol
    values = {
        "nome": customer_name,
        "protocolo": protocol,
        "atendente": (agent.first_name or agent.username) if agent else "",
        "empresa": settings.ISP_NAME,
    }
    return re.sub(
        r"\{\{\s*(\w+)\s*\}\}",
        lambda m: values.get(m.group(1).lower(), m.group(0)),
        body,
    )


# --- assignment helpers and presence ----------------------------------------------------------


def agents_for_assignment(*, conversation: Conversation) -> list[User]:
    """Active agents and supervisors who may take the conversation (team members)."""
    qs = User.objects.filter(
        is_active=True, groups__name__in=[Role.AGENT, Role.SUPERVISOR]
    ).distinct()
    if conversation.team_id:
        qs = qs.filter(teams=conversation.team_id)
    return list(qs.order_by("first_name", "username"))


def presence_board(*, user: User) -> list[User]:
    """Agents (of the supervisor's teams; admins: all) with presence and current load."""
    from django.db.models import Count

    if not access.user_is_supervisor(user):
        return []
    qs = User.objects.filter(is_active=True, groups__name__in=[Role.AGENT, Role.SUPERVISOR])
    if not user.has_role(Role.ADMIN):
        qs = qs.filter(teams__in=user_team_ids(user))
    return list(
        qs.distinct()
        .annotate(
            load=Count(
                "assigned_conversations",
                filter=Q(assigned_conversations__state=Conversation.State.ASSIGNED),
                distinct=True,
            )
        )
        .order_by("first_name", "username")
    )


# --- live events --------------------------------------------------------------------------------


def live_event_latest_seq() -> int:
    row = LiveEvent.objects.order_by("-pk").values_list("pk", flat=True).first()
    return row or 0


@dataclass
class CatchUp:
    events: list[dict[str, Any]]
    resync: bool


def live_events_since(*, user: User, since: int) -> CatchUp:
    """Events sent to the user's groups after sequence ``since`` (for a reconnecting socket).

    Looks back a few sequences before ``since``: events commit in parallel, so a lower
    sequence can be sent after a higher one; the console drops duplicates by sequence. When
    more than ``CONSOLE_CATCH_UP_MAX_EVENTS`` are missing, or ``since`` is older than the kept
    window, the answer is "resync" (the console reloads its lists and open conversation).
    """
    if not access.user_may_use_console(user):
        return CatchUp(events=[], resync=False)
    limit = events.catch_up_limit()
    lookback = getattr(settings, "CONSOLE_CATCH_UP_LOOKBACK", 20)
    groups = events.user_groups(user)
    oldest = LiveEvent.objects.order_by("pk").values_list("pk", flat=True).first()
    if oldest is not None and since and since < oldest - 1:
        return CatchUp(events=[], resync=True)
    rows = list(
        LiveEvent.objects.filter(pk__gt=max(since - lookback, 0))
        .filter(events.audience_filter(groups))
        .order_by("pk")[: limit + 1]
    )
    if len(rows) > limit:
        return CatchUp(events=[], resync=True)
    return CatchUp(events=[events.serialize(r) for r in rows], resync=False)
