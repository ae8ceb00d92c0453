"""Writes for customers, conversations and messages. Every state change goes through here.

Functions are keyword-only and run in a transaction. Errors a caller can show to a person are
``ServiceError`` subclasses with a translated message and a stable ``code``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import Role, Team, User
from conversations import outbox
from conversations.models import (
    Conversation,
    ConversationEvent,
    Customer,
    Message,
    ProtocolCounter,
)
from conversations.phones import normalize_phone


class ServiceError(Exception):
    """A refused operation; ``code`` is stable for APIs, ``message`` is for people."""

    code = "invalid"

    def __init__(self, message: Any | None = None) -> None:
        self.message = message or self.default_message
        super().__init__(str(self.message))

    default_message: Any = _("Operação inválida.")


class ConversationAlreadyOpen(ServiceError):
    code = "conversation_already_open"
    default_message = _("Este cliente já tem uma conversa aberta.")


class InvalidTransition(ServiceError):
    code = "invalid_transition"
    default_message = _("A conversa não pode mudar para essa situação.")


class AgentNotAllowed(ServiceError):
    code = "agent_not_allowed"
    default_message = _("Este usuário não pode atender esta conversa.")


class WindowClosed(ServiceError):
    code = "window_closed"
    default_message = _(
        "Passaram-se mais de 24 horas desde a última mensagem do cliente: "
        "o WhatsApp só permite enviar um modelo aprovado."
    )


class InvalidCustomerIdentity(ServiceError):
    code = "invalid_customer_identity"
    default_message = _("O contato não traz telefone nem identificador de usuário.")


# --- Protocol numbers ---------------------------------------------------------------------------

_PROTOCOL_SQL = (
    "INSERT INTO {table} (day, value) VALUES (%s, 1) "
    "ON CONFLICT (day) DO UPDATE SET value = {table}.value + 1 "
    "RETURNING value"
)


def protocol_next(*, now: datetime | None = None) -> str:
    """Return a new protocol number: the São Paulo date (YYYYMMDD) + a 6-digit daily sequence.

    One atomic upsert per call (SQLite ≥ 3.35 and PostgreSQL), so concurrent callers always get
    distinct, increasing numbers. Numbers are unique across the system and sort by time.
    """
    local_day = timezone.localtime(now or timezone.now()).date()
    table = connection.ops.quote_name(ProtocolCounter._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(_PROTOCOL_SQL.format(table=table), [local_day])
        (value,) = cursor.fetchone()
    return f"{local_day:%Y%m%d}{value:06d}"


# --- Customers ----------------------------------------------------------------------------------


def customer_resolve(
    *,
    wa_id: str | None = None,
    bsuid: str | None = None,
    parent_bsuid: str = "",
    name: str = "",
    username: str = "",
) -> Customer:
    """Find or create the customer behind a WhatsApp contact.

    Matches on the BSUID first, then on the canonical phone (so 9th-digit variants of a
    Brazilian number are one customer), then on the raw ``wa_id``. Fills identifiers the row
    was missing and keeps the latest ``wa_id`` and profile name Meta sent. Safe under concurrency: a lost insert race is
    resolved by reading the winner's row.
    """
    phone = normalize_phone(wa_id) if wa_id else None
    if not (bsuid or wa_id):
        raise InvalidCustomerIdentity()
    for _attempt in range(3):
        customer = _customer_find(bsuid=bsuid, phone=phone, wa_id=wa_id)
        if customer is None:
            try:
                with transaction.atomic():
                    return Customer.objects.create(
                        wa_id=wa_id or None,
                        bsuid=bsuid or None,
                        parent_bsuid=parent_bsuid or "",
                        phone_e164=phone,
                        name=(name or "")[:200],
                        username=(username or "")[:100],
                    )
            except IntegrityError:
                continue  # somebody created it meanwhile: read it on the next pass
        _customer_fill_identity(
            customer,
            wa_id=wa_id,
            bsuid=bsuid,
            parent_bsuid=parent_bsuid,
            phone=phone,
            name=name,
            username=username,
        )
        return customer
    raise IntegrityError("could not resolve customer after concurrent inserts")


def _customer_find(*, bsuid: str | None, phone: str | None, wa_id: str | None) -> Customer | None:
    if bsuid:
        found = Customer.objects.filter(bsuid=bsuid).first()
        if found is not None:
            return found
    if phone:
        return Customer.objects.filter(phone_e164=phone).first()
    if wa_id:
        # A wa_id that is not a plausible phone number (seen in test fixtures): match it as is.
        return Customer.objects.filter(wa_id=wa_id).first()
    return None


def _customer_fill_identity(
    customer: Customer,
    *,
    wa_id: str | None,
    bsuid: str | None,
    parent_bsuid: str,
    phone: str | None,
    name: str,
    username: str,
) -> None:
    changes: dict[str, Any] = {}
    if bsuid and not customer.bsuid:
        changes["bsuid"] = bsuid
    if parent_bsuid and customer.parent_bsuid != parent_bsuid:
        changes["parent_bsuid"] = parent_bsuid
    if wa_id and customer.wa_id != wa_id:
        changes["wa_id"] = wa_id
    if phone and not customer.phone_e164:
        changes["phone_e164"] = phone
    if name and customer.name != name[:200]:
        changes["name"] = name[:200]
    if username and customer.username != username[:100]:
        changes["username"] = username[:100]
    if not changes:
        return
    try:
        with transaction.atomic():
            Customer.objects.filter(pk=customer.pk).update(**changes, updated_at=timezone.now())
    except IntegrityError:
        # Another customer row already owns that identifier (two rows for one person, to be
        # merged by staff). Keep what we have rather than failing the inbound message.
        return
    for field, value in changes.items():
        setattr(customer, field, value)


# --- Conversations ------------------------------------------------------------------------------


def _event(
    conversation: Conversation,
    kind: str,
    *,
    actor: User | None = None,
    data: dict[str, Any] | None = None,
) -> ConversationEvent:
    return ConversationEvent.objects.create(
        conversation=conversation, kind=kind, actor=actor, data=data or {}
    )


def conversation_open(
    *,
    customer: Customer,
    team: Team | None = None,
    priority: int = Conversation.Priority.NORMAL,
    business_number_id: str = "",
    opened_at: datetime | None = None,
) -> Conversation:
    """Open a new conversation (state bot) with a fresh protocol number.

    Raises ``ConversationAlreadyOpen`` when the customer already has an open one; the database
    constraint is what decides, so two concurrent openings cannot both succeed.
    """
    try:
        with transaction.atomic():
            conversation = Conversation.objects.create(
                customer=customer,
                protocol=protocol_next(now=opened_at),
                team=team,
                priority=priority,
                business_number_id=business_number_id,
                opened_at=opened_at or timezone.now(),
            )
            _event(conversation, ConversationEvent.Kind.OPENED)
    except IntegrityError as exc:
        if Conversation.objects.filter(customer=customer).exclude(state="closed").exists():
            raise ConversationAlreadyOpen() from exc
        raise
    return conversation


def conversation_get_or_open(
    *, customer: Customer, business_number_id: str = ""
) -> tuple[Conversation, bool]:
    """Return the customer's open conversation, opening one when there is none."""
    for _attempt in range(3):
        current = customer.conversations.exclude(state=Conversation.State.CLOSED).first()
        if current is not None:
            return current, False
        try:
            return conversation_open(customer=customer, business_number_id=business_number_id), True
        except ConversationAlreadyOpen:
            continue
    raise ConversationAlreadyOpen()


def _locked(conversation: Conversation) -> Conversation:
    return Conversation.objects.select_for_update().get(pk=conversation.pk)


def _refresh(target: Conversation, source: Conversation) -> Conversation:
    for field in source._meta.concrete_fields:
        setattr(target, field.attname, getattr(source, field.attname))
    return target


def conversation_escalate(
    *,
    conversation: Conversation,
    reason: str,
    team: Team | None = None,
    priority: int | None = None,
    data: dict[str, Any] | None = None,
) -> Conversation:
    """Hand a conversation from the bot to the humans' waiting queue (bot → waiting)."""
    with transaction.atomic():
        conv = _locked(conversation)
        if conv.state != Conversation.State.BOT:
            raise InvalidTransition()
        conv.state = Conversation.State.WAITING
        conv.waiting_since = timezone.now()
        fields = ["state", "waiting_since"]
        if team is not None:
            conv.team = team
            fields.append("team")
        if priority is not None:
            conv.priority = priority
            fields.append("priority")
        conv.save(update_fields=fields)
        _event(conv, ConversationEvent.Kind.ESCALATED, data={"reason": reason, **(data or {})})
    return _refresh(conversation, conv)


def agent_can_take(agent: User, conversation: Conversation) -> bool:
    """An active agent or supervisor; when the conversation has a team, a member of it."""
    if not agent.is_active or not agent.has_role(Role.AGENT, Role.SUPERVISOR):
        return False
    if conversation.team_id is None:
        return True
    return agent.teams.filter(pk=conversation.team_id).exists()


def conversation_assign(
    *,
    conversation: Conversation,
    agent: User,
    actor: User | None = None,
    reason: str = "manual",
) -> Conversation:
    """Give a conversation to an agent (claim, assignment, or automatic routing).

    Locks the conversation row. Refuses closed conversations and agents who are not allowed to
    serve its team. ``reason`` is kept on the event so supervisors see why it went there.
    """
    with transaction.atomic():
        conv = _locked(conversation)
        if conv.state == Conversation.State.CLOSED:
            raise InvalidTransition(_("A conversa já foi encerrada."))
        if not agent_can_take(agent, conv):
            raise AgentNotAllowed()
        previous = conv.assigned_agent_id
        conv.state = Conversation.State.ASSIGNED
        conv.assigned_agent = agent
        conv.save(update_fields=["state", "assigned_agent"])
        _event(
            conv,
            ConversationEvent.Kind.ASSIGNED,
            actor=actor,
            data={
                "agent_id": str(agent.pk),
                "previous_agent_id": str(previous) if previous else None,
                "reason": reason,
            },
        )
    return _refresh(conversation, conv)


def conversation_unassign(
    *, conversation: Conversation, actor: User | None = None, reason: str = "manual"
) -> Conversation:
    """Return an assigned conversation to its team's waiting queue."""
    with transaction.atomic():
        conv = _locked(conversation)
        if conv.state != Conversation.State.ASSIGNED:
            raise InvalidTransition()
        previous = conv.assigned_agent_id
        conv.state = Conversation.State.WAITING
        conv.assigned_agent = None
        conv.waiting_since = timezone.now()
        conv.save(update_fields=["state", "assigned_agent", "waiting_since"])
        _event(
            conv,
            ConversationEvent.Kind.UNASSIGNED,
            actor=actor,
            data={"previous_agent_id": str(previous), "reason": reason},
        )
    return _refresh(conversation, conv)


def conversation_set_priority(
    *, conversation: Conversation, priority: int, actor: User | None = None
) -> Conversation:
    if priority not in Conversation.Priority.values:
        raise ServiceError(_("Prioridade inválida."))
    with transaction.atomic():
        conv = _locked(conversation)
        if conv.state == Conversation.State.CLOSED:
            raise InvalidTransition(_("A conversa já foi encerrada."))
        old = conv.priority
        conv.priority = priority
        conv.save(update_fields=["priority"])
        _event(
            conv, ConversationEvent.Kind.PRIORITY, actor=actor, data={"from": old, "to": priority}
        )
    return _refresh(conversation, conv)


def conversation_close(
    *,
    conversation: Conversation,
    resolution: str,
    actor: User | None = None,
    note: str = "",
) -> Conversation:
    """Close a conversation for good. Closing twice is refused (a closed one never reopens)."""
    if resolution not in Conversation.Resolution.values:
        raise ServiceError(_("Resolução inválida."))
    with transaction.atomic():
        conv = _locked(conversation)
        if conv.state == Conversation.State.CLOSED:
            raise InvalidTransition(_("A conversa já foi encerrada."))
        conv.state = Conversation.State.CLOSED
        conv.closed_at = timezone.now()
        conv.closed_by = actor
        conv.resolution = resolution
        conv.resolution_note = note
        conv.save(
            update_fields=["state", "closed_at", "closed_by", "resolution", "resolution_note"]
        )
        _event(conv, ConversationEvent.Kind.CLOSED, actor=actor, data={"resolution": resolution})
    return _refresh(conversation, conv)


# --- Messages -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MediaInfo:
    media_id: str = ""
    mime_type: str = ""
    sha256: str = ""
    size: int | None = None
    filename: str = ""


def message_record_inbound(
    *,
    conversation: Conversation,
    wamid: str,
    type: str,
    timestamp: datetime,
    text: str = "",
    media: MediaInfo | None = None,
    context_wamid: str = "",
    payload: dict[str, Any] | None = None,
    errors: list[dict[str, Any]] | None = None,
) -> tuple[Message, bool]:
    """Store a customer's message once per wamid; return ``(message, created)``.

    A replayed wamid (Meta retries for 7 days) returns the stored row unchanged. The
    conversation's last-customer-message time only moves forward, so late deliveries never
    shorten the 24-hour window.
    """
    existing = Message.objects.filter(wamid=wamid).first()
    if existing is not None:
        return existing, False
    if type not in Message.Type.values:
        type = Message.Type.UNSUPPORTED
    media = media or MediaInfo()
    first_error = (errors or [{}])[0] if errors else {}
    reply_to = (
        Message.objects.filter(wamid=context_wamid).only("pk").first() if context_wamid else None
    )
    try:
        with transaction.atomic():
            message = Message.objects.create(
                conversation=conversation,
                wamid=wamid,
                direction=Message.Direction.INBOUND,
                sender_kind=Message.SenderKind.CUSTOMER,
                type=type,
                text=text or "",
                media_id=media.media_id,
                media_mime_type=media.mime_type,
                media_sha256=media.sha256,
                media_size=media.size,
                media_filename=media.filename[:255],
                reply_to=reply_to,
                context_wamid=context_wamid or "",
                payload=payload or {},
                status=Message.Status.RECEIVED,
                error_code=first_error.get("code"),
                error_title=(first_error.get("title") or "")[:255],
                error_details=first_error.get("details") or "",
                whatsapp_timestamp=timestamp,
                created_at=timestamp,
            )
            Conversation.objects.filter(pk=conversation.pk).filter(
                Q(last_customer_message_at__isnull=True) | Q(last_customer_message_at__lt=timestamp)
            ).update(last_customer_message_at=timestamp, template_required=False)
            Conversation.objects.filter(pk=conversation.pk).filter(
                Q(last_message_at__isnull=True) | Q(last_message_at__lt=timestamp)
            ).update(last_message_at=timestamp)
    except IntegrityError:
        # The same wamid committed by a concurrent worker: that row is the message.
        return Message.objects.get(wamid=wamid), False
    return message, True


def message_record_outbound(
    *,
    conversation: Conversation,
    sender_kind: str,
    type: str = Message.Type.TEXT,
    text: str = "",
    sender_user: User | None = None,
    payload: dict[str, Any] | None = None,
    reply_to: Message | None = None,
    media: MediaInfo | None = None,
    now: datetime | None = None,
) -> Message:
    """Queue a reply in the outbox (status pending); delivery starts after commit.

    Free-form messages are refused outside the 24-hour customer-service window (Meta would
    reject them with 131047); templates are always allowed.
    """
    now = now or timezone.now()
    # The window moves with every inbound message: judge it on the stored row, not a stale copy.
    conversation.refresh_from_db(fields=["state", "last_customer_message_at", "first_response_at"])
    if conversation.state == Conversation.State.CLOSED and type != Message.Type.TEMPLATE:
        raise InvalidTransition(_("A conversa já foi encerrada."))
    if type != Message.Type.TEMPLATE and not conversation.window_is_open(now):
        raise WindowClosed()
    media = media or MediaInfo()
    with transaction.atomic():
        message = Message.objects.create(
            conversation=conversation,
            direction=Message.Direction.OUTBOUND,
            sender_kind=sender_kind,
            sender_user=sender_user,
            type=type,
            text=text,
            payload=payload or {},
            reply_to=reply_to,
            context_wamid=(reply_to.wamid or "") if reply_to else "",
            media_id=media.media_id,
            media_mime_type=media.mime_type,
            media_filename=media.filename,
            status=Message.Status.PENDING,
            created_at=now,
        )
        if sender_kind == Message.SenderKind.AGENT and conversation.first_response_at is None:
            Conversation.objects.filter(pk=conversation.pk, first_response_at__isnull=True).update(
                first_response_at=now
            )
        Conversation.objects.filter(pk=conversation.pk).update(last_message_at=now)
        outbox.dispatch_on_commit(message.pk)
    return message


# Order of delivery states: a status may only replace one of lower rank.
_DELIVERY_RANK = {
    Message.Status.PENDING: 0,
    Message.Status.SENT: 1,
    Message.Status.DELIVERED: 2,
    Message.Status.READ: 3,
    Message.Status.PLAYED: 4,
}
_TIMESTAMP_FIELD = {
    Message.Status.SENT: "sent_at",
    Message.Status.DELIVERED: "delivered_at",
    Message.Status.READ: "read_at",
    Message.Status.FAILED: "failed_at",
}


def message_update_delivery(
    *,
    wamid: str,
    status: str,
    timestamp: datetime | None = None,
    error_code: int | None = None,
    error_title: str = "",
    error_details: str = "",
) -> bool:
    """Move an outbound message's delivery state forward; return True when it changed.

    Monotonic: pending < sent < delivered < read < played; ``failed`` is terminal and replaces
    only pending/sent/delivered. A late ``sent`` after ``read`` changes nothing, and ``read``
    without ``delivered`` fills the delivered time too. One conditional UPDATE per call, so two
    workers applying statuses at once cannot move a message backwards.
    """
    timestamp = timestamp or timezone.now()
    if status == Message.Status.FAILED:
        allowed = [Message.Status.PENDING, Message.Status.SENT, Message.Status.DELIVERED]
    elif status in _DELIVERY_RANK:
        rank = _DELIVERY_RANK[status]
        allowed = [s for s, r in _DELIVERY_RANK.items() if r < rank]
    else:
        return False
    updates: dict[str, Any] = {"status": status}
    if status == Message.Status.FAILED:
        updates.update(
            error_code=error_code,
            error_title=error_title[:255],
            error_details=error_details,
            failed_at=timestamp,
        )
    qs = Message.objects.filter(
        wamid=wamid, direction=Message.Direction.OUTBOUND, status__in=allowed
    )
    changed = qs.update(**updates) > 0
    if changed:
        # Fill each milestone at most once; a read implies it was sent and delivered.
        rank = _DELIVERY_RANK.get(status, 0)
        for milestone, field in _TIMESTAMP_FIELD.items():
            if milestone == Message.Status.FAILED or _DELIVERY_RANK[milestone] > rank:
                continue
            Message.objects.filter(wamid=wamid, **{f"{field}__isnull": True}).update(
                **{field: timestamp}
            )
    return changed


def message_mark_sent(*, message: Message, wamid: str, now: datetime | None = None) -> Message:
    """Record Meta's acceptance of an outbound message (its wamid); status becomes sent."""
    now = now or timezone.now()
    Message.objects.filter(pk=message.pk, status=Message.Status.PENDING).update(
        wamid=wamid, status=Message.Status.SENT, sent_at=now
    )
    Message.objects.filter(pk=message.pk, wamid__isnull=True).update(wamid=wamid)
    message.refresh_from_db()
    return message


def message_claim_for_delivery(
    *, message_id: int, lease_seconds: int = 60, now: datetime | None = None
) -> Message | None:
    """Claim a pending outbound message for one delivery attempt; None if not claimable.

    One conditional UPDATE: only a pending message whose previous lease expired is claimed,
    so two workers (a retried task and the sweeper) never call Meta for the same message.
    The claim counts an attempt. Call ``message_release_claim`` to retry sooner.
    """
    now = now or timezone.now()
    claimed = (
        Message.objects.filter(
            pk=message_id,
            direction=Message.Direction.OUTBOUND,
            status=Message.Status.PENDING,
        )
        .filter(Q(delivery_claimed_until__isnull=True) | Q(delivery_claimed_until__lt=now))
        .update(
            delivery_claimed_until=now + timedelta(seconds=lease_seconds),
            delivery_attempts=F("delivery_attempts") + 1,
        )
    )
    if not claimed:
        return None
    return Message.objects.select_related("conversation", "conversation__customer").get(
        pk=message_id
    )


def message_release_claim(*, message: Message, retry_at: datetime | None = None) -> None:
    """Give a claimed message back to the outbox (it stays pending), claimable from retry_at."""
    Message.objects.filter(pk=message.pk, status=Message.Status.PENDING).update(
        delivery_claimed_until=retry_at
    )


def message_mark_failed(
    *,
    message: Message,
    error_code: int | None,
    error_title: str = "",
    error_details: str = "",
    now: datetime | None = None,
) -> None:
    """Record a send that Meta refused for good (synchronous error), with its code and title."""
    now = now or timezone.now()
    Message.objects.filter(
        pk=message.pk, status__in=[Message.Status.PENDING, Message.Status.SENT]
    ).update(
        status=Message.Status.FAILED,
        error_code=error_code,
        error_title=error_title[:255],
        error_details=error_details,
        failed_at=now,
        delivery_claimed_until=None,
    )
    _event(
        message.conversation,
        ConversationEvent.Kind.DELIVERY_FAILED,
        data={"message_id": message.pk, "error_code": error_code},
    )


def conversation_require_template(*, conversation: Conversation) -> None:
    """Meta said the 24-hour window is closed (131047): the console must offer templates."""
    Conversation.objects.filter(pk=conversation.pk).update(template_required=True)
    conversation.template_required = True


def conversation_bump_bot_attempts(*, conversation: Conversation) -> int:
    Conversation.objects.filter(pk=conversation.pk).update(bot_attempts=F("bot_attempts") + 1)
    conversation.refresh_from_db(fields=["bot_attempts"])
    return conversation.bot_attempts


def message_apply_revoke(*, wamid: str, at: datetime) -> bool:
    """The customer deleted a message on WhatsApp: keep the row, blank its content.

    Agents see "mensagem apagada"; the text is not kept (the customer withdrew it).
    Returns False when the message is unknown (it may arrive later; nothing to do then).
    """
    return (
        Message.objects.filter(wamid=wamid, direction=Message.Direction.INBOUND).update(
            text="", deleted_by_customer_at=at
        )
        > 0
    )


def message_apply_edit(*, wamid: str, text: str, at: datetime) -> bool:
    """The customer edited a message on WhatsApp: show the new text, mark it edited."""
    return (
        Message.objects.filter(
            wamid=wamid,
            direction=Message.Direction.INBOUND,
            deleted_by_customer_at__isnull=True,
        ).update(text=text, edited_at=at)
        > 0
    )
