"""Writes for customers, conversations and messages. Every state change goes through here.

Functions are keyword-only and run in a transaction. Errors a caller can show to a person are
``ServiceError`` subclasses with a translated message and a stable ``code``.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, F, Q
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _

from accounts.models import Presence, Role, Team, User
from conversations import business_hours, events, ingest, metrics, outbox, sla
from conversations.models import (
    Conversation,
    ConversationEvent,
    ConversationNote,
    Customer,
    LiveEvent,
    Message,
)

logger = logging.getLogger(__name__)


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


def protocol_next(*, now: datetime | None = None) -> str:
    """Return a new protocol number: the São Paulo date (YYYYMMDD) + a 6-digit daily sequence.

    One atomic upsert per call (``ingest.protocols_next``), so concurrent callers always get
    distinct, increasing numbers. Numbers are unique across the system and sort by time.
    """
    return ingest.protocols_next(count=1, now=now)[0]


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
    was missing and keeps the latest ``wa_id`` and profile name Meta sent. Safe under
    concurrency: a lost insert race is resolved by reading the winner's row. The rules are
    ``ingest.customers_resolve``'s (the webhook resolves a whole batch at once).
    """
    contact = ingest.ContactIdentity(
        wa_id=wa_id or None,
        bsuid=bsuid or None,
        parent_bsuid=parent_bsuid or "",
        name=name or "",
        username=username or "",
    )
    if not contact.identified:
        raise InvalidCustomerIdentity()
    return ingest.customers_resolve(contacts=[contact])[0]


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
    opening = ingest.Opening(
        customer=customer,
        business_number_id=business_number_id,
        team_id=team.pk if team is not None else None,
        priority=priority,
        opened_at=opened_at,
    )
    try:
        with transaction.atomic():
            (conversation,) = ingest.conversations_open(openings=[opening])
    except IntegrityError as exc:
        if Conversation.objects.filter(customer=customer).exclude(state="closed").exists():
            raise ConversationAlreadyOpen() from exc
        raise
    if team is not None:
        conversation.team = team
    return conversation


def conversation_get_or_open(
    *, customer: Customer, business_number_id: str = ""
) -> tuple[Conversation, bool]:
    """Return the customer's open conversation, opening one when there is none."""
    opening = ingest.Opening(customer=customer, business_number_id=business_number_id)
    try:
        ((conversation, opened),) = ingest.conversations_get_or_open(openings=[opening])
    except ingest.LostRace as exc:
        raise ConversationAlreadyOpen() from exc
    return conversation, opened


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
    request_kind: str = "",
    now: datetime | None = None,
    notify_customer: bool = True,
) -> Conversation:
    """Hand a conversation from the bot to the humans' waiting queue (bot → waiting).

    Starts its SLA clocks (``conversations.sla``). ``request_kind``: the demand's kind as the
    caller understood it, kept unless staff already classified the demand. Outside the team's business
    hours the customer is told, in the same transaction (outbox), when a person will be back
    (``notify_customer=False``: not told, for imports and demo data); the conversation stays
    queued either way.
    """
    now = now or timezone.now()
    with transaction.atomic():
        conv = _locked(conversation)
        if conv.state != Conversation.State.BOT:
            raise InvalidTransition()
        conv.state = Conversation.State.WAITING
        conv.waiting_since = conv.escalated_at = now
        conv.escalation_reason = reason[:60]
        fields = ["state", "waiting_since", "escalated_at", "escalation_reason"]
        if team is not None:
            conv.team = team
            fields.append("team")
        if priority is not None:
            conv.priority = priority
            fields.append("priority")
        fields += _classify(conv, request_kind=request_kind)
        fields += _sla_start(conv, now)
        conv.save(update_fields=_unique(fields))
        event_data = {"reason": reason, **(data or {})}
        back_at = _tell_when_people_are_back(conv, now) if notify_customer else None
        if back_at is not None:
            event_data["outside_hours_until"] = back_at.isoformat()
        _event(conv, ConversationEvent.Kind.ESCALATED, data=event_data)
        events.publish_conversation(conversation_id=conv.pk, kind="conversation.waiting")
    return _refresh(conversation, conv)


# --- SLA clocks and the demand's kind (conversations.sla reads what these store) ---------------


def _unique(fields: list[str]) -> list[str]:
    return list(dict.fromkeys(fields))


def _sla_recompute(conv: Conversation) -> list[str]:
    """Recompute the stored clocks of ``conv`` (in memory) from its team, priority, start and
    kind; return the fields to save."""
    due = sla.due_times(
        team_id=conv.team_id, priority=conv.priority, started_at=conv.sla_started_at
    )
    conv.first_response_due_at = due.first_response_due_at
    conv.resolution_due_at = due.resolution_due_at
    conv.anatel_due_at = sla.anatel_due_at(opened_at=conv.opened_at, request_kind=conv.request_kind)
    return ["first_response_due_at", "resolution_due_at", "anatel_due_at"]


def _sla_start(conv: Conversation, now: datetime) -> list[str]:
    """The conversation reaches people (escalation, or a claim straight from the bot): its
    first-response and resolution clocks start, once; later moves keep the start."""
    if conv.sla_started_at is not None:
        return []
    conv.sla_started_at = now
    return ["sla_started_at", *_sla_recompute(conv)]


def _classify(conv: Conversation, *, request_kind: str) -> list[str]:
    """The bot's reading of the demand's kind; never overrides a kind staff chose."""
    if (
        request_kind not in Conversation.RequestKind.values
        or conv.request_kind_source == Conversation.RequestKindSource.STAFF
        or conv.request_kind == request_kind
    ):
        return []
    conv.request_kind = request_kind
    conv.request_kind_source = Conversation.RequestKindSource.BOT
    return ["request_kind", "request_kind_source", *_sla_recompute(conv)]


def conversation_classify_by_bot(*, conversation: Conversation, request_kind: str) -> Conversation:
    """Record the demand's kind the bot derived from the intent it recognised (which sets the
    Anatel deadline). Staff's classification always wins. Call inside the bot's decision
    transaction (the row is locked there)."""
    fields = _classify(conversation, request_kind=request_kind)
    if fields:
        conversation.save(update_fields=fields)
    return conversation


def conversation_set_request_kind(
    *, conversation: Conversation, request_kind: str, actor: User
) -> Conversation:
    """Staff classify the demand (information, request, complaint, cancellation, history);
    the Anatel deadline follows. The bot will not change it afterwards."""
    if request_kind not in Conversation.RequestKind.values:
        raise InvalidInput(_("Tipo de demanda inválido."))
    with transaction.atomic():
        conv = _locked(conversation)
        _require_handler(actor, conv)
        old = conv.request_kind
        conv.request_kind = request_kind
        conv.request_kind_source = Conversation.RequestKindSource.STAFF
        conv.save(update_fields=["request_kind", "request_kind_source", *_sla_recompute(conv)])
        _event(
            conv,
            ConversationEvent.Kind.CLASSIFIED,
            actor=actor,
            data={"from": old, "to": request_kind},
        )
        events.publish_conversation(conversation_id=conv.pk, kind="conversation.classified")
    return _refresh(conversation, conv)


def _tell_when_people_are_back(conv: Conversation, now: datetime) -> datetime | None:
    """Outside the team's business hours: queue a pt-BR message telling the customer when a
    person will be back (next opening, São Paulo time); return that moment (None when open).

    The reply goes through the outbox like every other; a closed 24-hour window (a stale
    message escalated late) loses the notice, never the escalation.
    """
    calendar = business_hours.calendar_for_team(conv.team_id)
    if calendar.is_open(now):
        return None
    back_at = calendar.next_opening(now)
    with translation.override(settings.LANGUAGE_CODE):
        if back_at is None:
            text = str(
                _(
                    "Nosso atendimento com pessoas está fechado agora. Sua conversa continua "
                    "na fila (protocolo %(protocol)s) e um atendente responde assim que "
                    "possível."
                )
                % {"protocol": conv.protocol}
            )
        else:
            text = str(
                _(
                    "Nosso atendimento com pessoas está fechado agora. Um atendente volta "
                    "%(when)s (horário de Brasília) e continua daqui: sua conversa já está "
                    "na fila (protocolo %(protocol)s)."
                )
                % {
                    "when": business_hours.describe_opening(back_at, now),
                    "protocol": conv.protocol,
                }
            )
    try:
        message_record_outbound(
            conversation=conv, sender_kind=Message.SenderKind.BOT, text=text, now=now
        )
    except ServiceError as exc:
        logger.warning(
            "escalation: outside-hours notice not queued",
            extra={"conversation_id": conv.pk, "error": exc.code},
        )
    return back_at


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
        conv.save(update_fields=["state", "assigned_agent", *_sla_start(conv, timezone.now())])
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
        events.publish_conversation(
            conversation_id=conv.pk,
            kind="conversation.assigned",
            data={"reason": reason},
            also_to=[events.group_for_agent(previous)] if previous else (),
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
        events.publish_conversation(
            conversation_id=conv.pk,
            kind="conversation.unassigned",
            data={"reason": reason},
            also_to=[events.group_for_agent(previous)],
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
        conv.save(update_fields=["priority", *_sla_recompute(conv)])
        _event(
            conv, ConversationEvent.Kind.PRIORITY, actor=actor, data={"from": old, "to": priority}
        )
        events.publish_conversation(conversation_id=conv.pk, kind="conversation.priority")
    return _refresh(conversation, conv)


def conversation_close(
    *,
    conversation: Conversation,
    resolution: str,
    actor: User | None = None,
    note: str = "",
    request_csat: bool = False,
    tell_protocol: bool = False,
) -> Conversation:
    """Close a conversation for good. Closing twice is refused (a closed one never reopens).

    ``request_csat``: queue the satisfaction survey first, in the same transaction, when it is
    due (``conversations.csat.csat_request_locked``: at most once per conversation, only
    inside the 24-hour window). The survey gives the protocol again with its dates.
    ``tell_protocol``: when no survey went (none asked, CSAT off, already rated), send the
    protocol with its dates on its own (``csat_closing_notice_locked``; RGC 765 art. 9) —
    callers that said goodbye with the protocol themselves (the bot) leave it off.
    """
    if resolution not in Conversation.Resolution.values:
        raise ServiceError(_("Resolução inválida."))
    with transaction.atomic():
        conv = _locked(conversation)
        if conv.state == Conversation.State.CLOSED:
            raise InvalidTransition(_("A conversa já foi encerrada."))
        from conversations.csat import csat_closing_notice_locked, csat_request_locked

        now = timezone.now()  # the closing time the customer is told is the one stored
        survey = (
            csat_request_locked(conversation=conv, resolution=resolution, now=now)
            if request_csat
            else None
        )
        if survey is None and tell_protocol:
            csat_closing_notice_locked(conversation=conv, resolution=resolution, now=now)
        conv.state = Conversation.State.CLOSED
        conv.closed_at = now
        conv.closed_by = actor
        conv.resolution = resolution
        conv.resolution_note = note
        conv.save(
            update_fields=["state", "closed_at", "closed_by", "resolution", "resolution_note"]
        )
        _event(conv, ConversationEvent.Kind.CLOSED, actor=actor, data={"resolution": resolution})
        events.publish_conversation(conversation_id=conv.pk, kind="conversation.closed")
    return _refresh(conversation, conv)


# --- Messages -----------------------------------------------------------------------------------


MediaInfo = ingest.MediaInfo


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
    count_unread: bool = True,
) -> tuple[Message, bool]:
    """Store a customer's message once per wamid; return ``(message, created)``.

    A replayed wamid (Meta retries for 7 days) returns the stored row unchanged. The
    conversation's last-customer-message time only moves forward, so late deliveries never
    shorten the 24-hour window. ``count_unread=False``: nobody has to read it (a survey
    answer on a closed conversation). The rules are ``ingest.messages_record_inbound``'s.
    """
    record = ingest.InboundRecord(
        conversation=conversation,
        wamid=wamid,
        type=type,
        timestamp=timestamp,
        text=text,
        media=media,
        context_wamid=context_wamid,
        payload=payload,
        errors=errors,
        count_unread=count_unread,
    )
    ((message, created),) = ingest.messages_record_inbound(records=[record])
    return message, created


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
    media_file: Any | None = None,
    allow_closed: bool = False,
) -> Message:
    """Queue a reply in the outbox (status pending); delivery starts after commit.

    Free-form messages are refused outside the 24-hour customer-service window (Meta would
    reject them with 131047); templates are always allowed. ``media_file`` (an uploaded
    file) is stored on ``Message.media_file`` for the channel to upload before sending.
    ``allow_closed``: a system message after the close (the CSAT thanks); people never
    write to a closed conversation.
    """
    now = now or timezone.now()
    # The window moves with every inbound message: judge it on the stored row, not a stale copy
    # (and count a first response from the stored start of people's clock).
    conversation.refresh_from_db(
        fields=[
            "state",
            "last_customer_message_at",
            "first_response_at",
            "sla_started_at",
            "escalated_at",
            "priority",
        ]
    )
    closed_ok = allow_closed and sender_kind == Message.SenderKind.SYSTEM
    if (
        conversation.state == Conversation.State.CLOSED
        and type != Message.Type.TEMPLATE
        and not closed_ok
    ):
        raise InvalidTransition(_("A conversa já foi encerrada."))
    if type != Message.Type.TEMPLATE and not conversation.window_is_open(now):
        metrics.window_refused(source="local")
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
            media_size=media.size,
            status=Message.Status.PENDING,
            created_at=now,
        )
        if media_file is not None:
            message.media_file.save(media_file.name, media_file, save=False)
            message.save(update_fields=["media_file"])
        if (
            sender_kind == Message.SenderKind.AGENT
            and conversation.first_response_at is None
            and Conversation.objects.filter(
                pk=conversation.pk, first_response_at__isnull=True
            ).update(first_response_at=now)
        ):
            metrics.first_response(conversation=conversation, at=now)
        updates: dict[str, Any] = {"last_message_at": now, "last_message": message}
        if sender_kind == Message.SenderKind.AGENT:
            updates["unread_count"] = 0  # answering is reading
        Conversation.objects.filter(pk=conversation.pk).update(**updates)
        events.publish_conversation(
            conversation_id=conversation.pk,
            kind="message.new",
            data={"message_id": message.pk, "direction": Message.Direction.OUTBOUND},
        )
        outbox.dispatch_on_commit(message.pk)
    return message


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
    without ``delivered`` fills the delivered time too. The row is locked while it is judged,
    so two workers applying statuses at once cannot move a message backwards (the rules are
    ``ingest.messages_update_delivery``'s).
    """
    update = ingest.DeliveryUpdate(
        wamid=wamid,
        status=status,
        timestamp=timestamp,
        error_code=error_code,
        error_title=error_title,
        error_details=error_details,
    )
    return ingest.messages_update_delivery(updates=[update])[0].changed


_publish_status = ingest.delivery_publish


def message_mark_sent(*, message: Message, wamid: str, now: datetime | None = None) -> Message:
    """Record Meta's acceptance of an outbound message (its wamid); status becomes sent."""
    now = now or timezone.now()
    changed = Message.objects.filter(pk=message.pk, status=Message.Status.PENDING).update(
        wamid=wamid, status=Message.Status.SENT, sent_at=now
    )
    Message.objects.filter(pk=message.pk, wamid__isnull=True).update(wamid=wamid)
    message.refresh_from_db()
    if changed:
        _publish_status(message.conversation_id, message.pk, Message.Status.SENT)
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


def message_store_uploaded_media_id(*, message: Message, media_id: str) -> str:
    """Remember the id Meta gave an uploaded attachment, once; return the id the row keeps.

    A conditional UPDATE (only while the row has no id), so a retried delivery reuses the
    first upload instead of uploading again.
    """
    Message.objects.filter(pk=message.pk, direction=Message.Direction.OUTBOUND, media_id="").update(
        media_id=media_id
    )
    stored = Message.objects.filter(pk=message.pk).values_list("media_id", flat=True).first()
    message.media_id = stored or media_id
    return message.media_id


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
    changed = Message.objects.filter(
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
    if changed:
        _publish_status(message.conversation_id, message.pk, Message.Status.FAILED)


def conversation_require_template(*, conversation: Conversation) -> None:
    """Meta said the 24-hour window is closed (131047): the console must offer templates."""
    metrics.window_refused(source="meta")
    Conversation.objects.filter(pk=conversation.pk).update(template_required=True)
    conversation.template_required = True
    events.publish_conversation(conversation_id=conversation.pk, kind="conversation.window")


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


# --- The console: staff actions ------------------------------------------------------------------
# Views and the API check that the user may *see* the conversation (selectors); the rules below
# decide what a console user may *do* with it.


class ActionNotAllowed(ServiceError):
    code = "not_allowed"
    default_message = _("Você não tem permissão para esta ação nesta conversa.")


class AlreadyAssigned(ServiceError):
    code = "already_assigned"
    default_message = _("Outra pessoa já assumiu esta conversa.")


class InvalidInput(ServiceError):
    code = "invalid_input"
    default_message = _("Dados inválidos.")


def _is_console_staff(user: User | None) -> bool:
    return bool(
        user is not None
        and user.is_active
        and user.has_role(Role.AGENT, Role.SUPERVISOR, Role.ADMIN)
    )


def _is_supervisor(user: User) -> bool:
    return user.has_role(Role.SUPERVISOR, Role.ADMIN)


def conversation_may_handle(*, user: User, conversation: Conversation) -> bool:
    """Reply, transfer, close: the assigned agent, or a supervisor/admin."""
    if not _is_console_staff(user):
        return False
    return conversation.assigned_agent_id == user.pk or _is_supervisor(user)


def _require_handler(user: User, conversation: Conversation) -> None:
    if not conversation_may_handle(user=user, conversation=conversation):
        raise ActionNotAllowed()


def conversation_claim(*, conversation: Conversation, agent: User) -> Conversation:
    """The agent takes a conversation from the waiting queue (or from the bot).

    Race-free: the row is locked; the second of two agents claiming at once is refused with
    ``AlreadyAssigned``. Claiming one's own conversation again changes nothing.
    """
    with transaction.atomic():
        conv = _locked(conversation)
        if conv.state == Conversation.State.CLOSED:
            raise InvalidTransition(_("A conversa já foi encerrada."))
        if conv.state == Conversation.State.ASSIGNED:
            if conv.assigned_agent_id == agent.pk:
                return _refresh(conversation, conv)
            raise AlreadyAssigned()
        if not agent_can_take(agent, conv):
            raise AgentNotAllowed()
        return conversation_assign(
            conversation=conversation, agent=agent, actor=agent, reason="claim"
        )


def conversation_assign_by_staff(
    *, conversation: Conversation, agent: User, actor: User
) -> Conversation:
    """A supervisor or admin hands a conversation to an agent (an agent may only claim)."""
    if actor.pk == agent.pk:
        return conversation_claim(conversation=conversation, agent=agent)
    if not (_is_console_staff(actor) and _is_supervisor(actor)):
        raise ActionNotAllowed(_("Só supervisores atribuem conversas a outras pessoas."))
    return conversation_assign(
        conversation=conversation, agent=agent, actor=actor, reason="assigned_by_supervisor"
    )


def conversation_transfer(
    *,
    conversation: Conversation,
    actor: User,
    team: Team | None = None,
    agent: User | None = None,
    note: str = "",
) -> Conversation:
    """Move a conversation to another team's queue and/or another agent, with an optional note.

    To a team only: it goes back to that team's waiting queue. To an agent: assigned to them
    (who must belong to the target team). The note is kept as a private note. The screens
    that could see it before are told it left.
    """
    if team is None and agent is None:
        raise InvalidInput(_("Escolha uma equipe ou um atendente."))
    note = (note or "").strip()
    if len(note) > 4000:
        raise InvalidInput(_("A nota pode ter no máximo 4.000 caracteres."))
    with transaction.atomic():
        conv = _locked(conversation)
        if conv.state == Conversation.State.CLOSED:
            raise InvalidTransition(_("A conversa já foi encerrada."))
        _require_handler(actor, conv)
        before = events.conversation_audience(
            team_id=conv.team_id, assigned_agent_id=conv.assigned_agent_id
        )
        from_team, from_agent = conv.team_id, conv.assigned_agent_id
        if team is not None and not team.is_active:
            raise InvalidInput(_("Esta equipe está desativada."))
        if team is not None:
            conv.team = team
        if agent is not None:
            if not agent_can_take(agent, conv):
                raise AgentNotAllowed()
            conv.state = Conversation.State.ASSIGNED
            conv.assigned_agent = agent
        else:
            conv.state = Conversation.State.WAITING
            conv.assigned_agent = None
            conv.waiting_since = timezone.now()
        # Another team, other targets and hours; the customer's wait keeps its start.
        sla_fields = _sla_start(conv, timezone.now()) or _sla_recompute(conv)
        conv.save(
            update_fields=_unique(["team", "state", "assigned_agent", "waiting_since", *sla_fields])
        )
        note_row = None
        if note:
            note_row = conv.notes.create(author=actor, text=note)
        _event(
            conv,
            ConversationEvent.Kind.TRANSFERRED,
            actor=actor,
            data={
                "from_team_id": from_team,
                "to_team_id": conv.team_id,
                "from_agent_id": str(from_agent) if from_agent else None,
                "to_agent_id": str(agent.pk) if agent else None,
                "note_id": note_row.pk if note_row else None,
                "reason": "transfer",
            },
        )
        events.publish_conversation(
            conversation_id=conv.pk, kind="conversation.transferred", also_to=before
        )
    return _refresh(conversation, conv)


def note_add(*, conversation: Conversation, author: User, text: str):
    """A private note (staff only, never sent to the customer)."""
    text = (text or "").strip()
    if not text:
        raise InvalidInput(_("Escreva a nota."))
    if len(text) > 4000:
        raise InvalidInput(_("A nota pode ter no máximo 4.000 caracteres."))
    if not _is_console_staff(author):
        raise ActionNotAllowed()
    with transaction.atomic():
        note = ConversationNote.objects.create(conversation=conversation, author=author, text=text)
        events.publish_conversation(
            conversation_id=conversation.pk, kind="note.new", data={"note_id": note.pk}
        )
    return note


def conversation_mark_read(*, conversation: Conversation, user: User) -> bool:
    """The assigned agent opened the conversation: its unread count goes to zero.

    Returns True when there was something unread (the caller may then send read receipts).
    """
    if conversation.assigned_agent_id != user.pk or conversation.unread_count == 0:
        return False
    changed = (
        Conversation.objects.filter(pk=conversation.pk, unread_count__gt=0).update(unread_count=0)
        > 0
    )
    conversation.unread_count = 0
    if changed:
        events.publish_conversation(conversation_id=conversation.pk, kind="conversation.read")
    return changed


MAX_TEXT = 4096
_MB = 1024 * 1024
_DOCUMENT_TYPES = (
    "text/plain",
    "application/pdf",
    "application/msword",
    "application/vnd.ms-excel",
    "application/vnd.ms-powerpoint",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
)
# MIME type → (message type, max bytes): what WhatsApp's Cloud API accepts (WHATSAPP-FACTS §5).
# The one table: the console refuses anything else, the channel checks it again before upload
# (where it also holds static stickers to 100 KB, which needs the file's header).
ALLOWED_ATTACHMENTS: dict[str, tuple[str, int]] = {
    "image/jpeg": ("image", 5 * _MB),
    "image/png": ("image", 5 * _MB),
    "image/webp": ("sticker", 500 * 1024),
    **{
        mime: ("audio", 16 * _MB)
        for mime in ("audio/aac", "audio/amr", "audio/mpeg", "audio/mp4", "audio/ogg")
    },
    "video/mp4": ("video", 16 * _MB),
    "video/3gpp": ("video", 16 * _MB),
    **{mime: ("document", 100 * _MB) for mime in _DOCUMENT_TYPES},
}


def message_send_by_agent(
    *,
    conversation: Conversation,
    agent: User,
    text: str = "",
    reply_to: Message | None = None,
    attachment: Any | None = None,
) -> Message:
    """An agent's reply (text, or an attachment with an optional caption) through the outbox.

    Only the assigned agent or a supervisor/admin may reply, only to an assigned conversation,
    inside the 24-hour window; ``reply_to`` must be a message of the same conversation.
    """
    text = (text or "").strip()
    conversation.refresh_from_db(fields=["state", "assigned_agent", "team"])
    if conversation.state == Conversation.State.CLOSED:
        raise InvalidTransition(_("A conversa já foi encerrada."))
    if conversation.state != Conversation.State.ASSIGNED:
        raise InvalidTransition(_("Assuma a conversa antes de responder."))
    _require_handler(agent, conversation)
    if reply_to is not None and reply_to.conversation_id != conversation.pk:
        raise InvalidInput(_("A mensagem citada não é desta conversa."))
    if attachment is None:
        if not text:
            raise InvalidInput(_("Escreva a mensagem."))
        if len(text) > MAX_TEXT:
            raise InvalidInput(_("A mensagem pode ter no máximo 4.096 caracteres."))
        return message_record_outbound(
            conversation=conversation,
            sender_kind=Message.SenderKind.AGENT,
            sender_user=agent,
            type=Message.Type.TEXT,
            text=text,
            reply_to=reply_to,
        )
    mime = (getattr(attachment, "content_type", "") or "").split(";")[0].strip().lower()
    if mime not in ALLOWED_ATTACHMENTS:
        raise InvalidInput(_("Tipo de arquivo não aceito pelo WhatsApp."))
    kind, max_bytes = ALLOWED_ATTACHMENTS[mime]
    if attachment.size > max_bytes:
        raise InvalidInput(_("Arquivo grande demais para o WhatsApp."))
    if len(text) > 1024:
        raise InvalidInput(_("A legenda pode ter no máximo 1.024 caracteres."))
    filename = (getattr(attachment, "name", "") or "arquivo")[-255:]
    return message_record_outbound(
        conversation=conversation,
        sender_kind=Message.SenderKind.AGENT,
        sender_user=agent,
        type=kind,
        text="" if kind in ("sticker", "audio") else text,
        reply_to=reply_to,
        media=MediaInfo(mime_type=mime, filename=filename, size=attachment.size),
        media_file=attachment,
    )


def message_send_template_by_agent(
    *,
    conversation: Conversation,
    agent: User,
    name: str,
    language: str,
    body_text: str,
    parameters: list[str],
) -> Message:
    """Send an approved template (the only thing allowed outside the 24-hour window).

    The caller passes the template's name, language and body (``{{1}}`` placeholders) from the
    channel's template list; ``parameters`` fill the placeholders in order.
    """
    conversation.refresh_from_db(fields=["state", "assigned_agent", "team"])
    if conversation.state == Conversation.State.CLOSED:
        raise InvalidTransition(_("A conversa já foi encerrada."))
    _require_handler(agent, conversation)
    parameters = [(p or "").strip() for p in parameters]
    needed = len(set(re.findall(r"\{\{(\d+)\}\}", body_text)))
    if len(parameters) != needed or any(not p for p in parameters):
        raise InvalidInput(_("Preencha todos os campos do modelo."))
    if any(len(p) > 1024 for p in parameters):
        raise InvalidInput(_("Campo do modelo longo demais."))
    rendered = body_text
    for index, value in enumerate(parameters, start=1):
        rendered = rendered.replace(f"{{{{{index}}}}}", value)
    components = []
    if parameters:
        components.append(
            {"type": "body", "parameters": [{"type": "text", "text": p} for p in parameters]}
        )
    return message_record_outbound(
        conversation=conversation,
        sender_kind=Message.SenderKind.AGENT,
        sender_user=agent,
        type=Message.Type.TEMPLATE,
        text=rendered,
        payload={
            "template": {"name": name, "language": {"code": language}, "components": components}
        },
    )


def conversation_close_by_staff(
    *,
    conversation: Conversation,
    actor: User,
    resolution: str,
    note: str = "",
    send_csat: bool | None = None,
) -> Conversation:
    """Close with a resolution; sends the CSAT survey first when it is due.

    Agents close their own conversations; supervisors and admins any. The survey is recorded
    in the same transaction as the close (through the outbox), so either both happen or none;
    ``send_csat=False`` skips it (``None``: as ``CSAT_ENABLED`` says).
    """
    if resolution not in Conversation.Resolution.values:
        raise InvalidInput(_("Resolução inválida."))
    if len(note or "") > 4000:
        raise InvalidInput(_("A nota pode ter no máximo 4.000 caracteres."))
    with transaction.atomic():
        conv = _locked(conversation)
        if conv.state == Conversation.State.CLOSED:
            raise InvalidTransition(_("A conversa já foi encerrada."))
        own = conv.state == Conversation.State.ASSIGNED and conv.assigned_agent_id == actor.pk
        if not _is_console_staff(actor) or not (own or _is_supervisor(actor)):
            raise ActionNotAllowed()
        conversation_close(
            conversation=conv,
            resolution=resolution,
            actor=actor,
            note=note,
            request_csat=send_csat is not False,
            tell_protocol=True,
        )
        conv.refresh_from_db()
    return _refresh(conversation, conv)


# --- Presence -------------------------------------------------------------------------------------


def agent_set_presence(*, user: User, presence: str, now: datetime | None = None) -> bool:
    """Set an agent's presence (online/away/offline); True when it changed.

    Changes are published to supervisors; going online triggers automatic assignment.
    """
    if presence not in Presence.values:
        raise InvalidInput(_("Presença inválida."))
    now = now or timezone.now()
    with transaction.atomic():
        changed = (
            User.objects.filter(pk=user.pk)
            .exclude(presence=presence)
            .update(presence=presence, presence_changed_at=now)
            > 0
        )
        if changed:
            user.presence = presence
            user.presence_changed_at = now
            events.publish_presence(user_id=user.pk, presence=presence)
            if presence == Presence.ONLINE:
                autoassign_on_commit()
    return changed


def _presence_keys(user_id: Any) -> tuple[str, str]:
    return f"console:sockets:{user_id}", f"console:heartbeat:{user_id}"


def agent_socket_connected(*, user: User) -> None:
    """A console socket opened: the agent is online (counted per socket, for several tabs)."""
    sockets_key, heartbeat_key = _presence_keys(user.pk)
    ttl = getattr(settings, "CONSOLE_PRESENCE_TIMEOUT_SECONDS", 75)
    try:
        if not cache.add(sockets_key, 1, timeout=ttl * 4):
            cache.incr(sockets_key)
        cache.set(heartbeat_key, Presence.ONLINE, timeout=ttl)
    except Exception:
        logger.warning("presence: cache unavailable", exc_info=True)  # the sweep corrects it
    agent_set_presence(user=user, presence=Presence.ONLINE)


def agent_heartbeat(*, user: User, state: str) -> None:
    """The console says it is alive, and whether the agent is active (online) or idle (away)."""
    state = Presence.AWAY if state == Presence.AWAY else Presence.ONLINE
    sockets_key, heartbeat_key = _presence_keys(user.pk)
    ttl = getattr(settings, "CONSOLE_PRESENCE_TIMEOUT_SECONDS", 75)
    try:
        cache.set(heartbeat_key, state, timeout=ttl)
        cache.touch(sockets_key, ttl * 4)
    except Exception:
        logger.warning("presence: cache unavailable", exc_info=True)
    agent_set_presence(user=user, presence=state)


def agent_socket_disconnected(*, user: User) -> None:
    """A console socket closed: offline when it was the agent's last one."""
    sockets_key, heartbeat_key = _presence_keys(user.pk)
    remaining = 0
    try:
        remaining = cache.decr(sockets_key)
    except ValueError:
        remaining = 0
    except Exception:
        remaining = 0
    if remaining <= 0:
        try:
            cache.delete_many([sockets_key, heartbeat_key])
        except Exception:
            logger.warning("presence: cache unavailable", exc_info=True)
        agent_set_presence(user=user, presence=Presence.OFFLINE)


def presence_sweep(*, now: datetime | None = None) -> int:
    """Agents shown online/away whose console stopped sending heartbeats become offline."""
    count = 0
    for user in User.objects.filter(presence__in=[Presence.ONLINE, Presence.AWAY]):
        _sockets, heartbeat_key = _presence_keys(user.pk)
        try:
            alive = cache.get(heartbeat_key) is not None
        except Exception:
            alive = True  # cannot tell: leave it
        if not alive and agent_set_presence(user=user, presence=Presence.OFFLINE, now=now):
            count += 1
    return count


# --- Assignment -----------------------------------------------------------------------------------


def autoassign_on_commit() -> None:
    """After commit, run automatic assignment (a Celery task, so it never slows the caller)."""
    if not getattr(settings, "CONVERSATIONS_AUTO_ASSIGN", True):
        return

    def _enqueue() -> None:
        try:
            from conversations.tasks import autoassign_waiting

            autoassign_waiting.delay()
        except Exception:
            logger.exception("autoassign: could not enqueue")

    transaction.on_commit(_enqueue)


def conversation_autoassign(*, limit: int = 100) -> list[tuple[int, str]]:
    """Give waiting conversations to online agents of the right team, oldest and most urgent
    first, within each agent's capacity; return ``[(conversation_id, reason), ...]``.

    A returning customer goes to the agent of their previous conversation when that agent is
    online with room (reason ``auto_previous_agent``); otherwise the least-loaded eligible agent
    (``auto_least_loaded``). Race-free on PostgreSQL: waiting rows are locked with SKIP LOCKED
    (concurrent runs take different conversations) and the agents' rows are locked in a fixed
    order (their loads are counted by one run at a time).
    """
    done: list[tuple[int, str]] = []
    with transaction.atomic():
        qs = Conversation.objects.filter(state=Conversation.State.WAITING).order_by(
            "-priority", F("waiting_since").asc(nulls_last=True), "pk"
        )
        if connection.features.has_select_for_update_skip_locked:
            qs = qs.select_for_update(skip_locked=True, of=("self",))
        waiting = list(qs[:limit])
        if not waiting:
            return done
        agent_ids = list(
            User.objects.filter(
                is_active=True, presence=Presence.ONLINE, groups__name=Role.AGENT
            ).values_list("pk", flat=True)
        )
        if not agent_ids:
            return done
        agents_qs = User.objects.filter(pk__in=agent_ids).order_by("pk")
        if connection.features.has_select_for_update:
            list(agents_qs.select_for_update().values_list("pk", flat=True))
        agents = {
            a.pk: a
            for a in agents_qs.annotate(
                load=Count(
                    "assigned_conversations",
                    filter=Q(assigned_conversations__state=Conversation.State.ASSIGNED),
                )
            ).prefetch_related("teams")
        }
        team_ids = {pk: {t.pk for t in a.teams.all()} for pk, a in agents.items()}
        previous: dict[int, Any] = {}
        for customer_id, agent_id in (
            Conversation.objects.filter(
                customer_id__in=[c.customer_id for c in waiting],
                state=Conversation.State.CLOSED,
                assigned_agent__isnull=False,
            )
            .order_by("customer_id", "-closed_at")
            .values_list("customer_id", "assigned_agent_id")
        ):
            previous.setdefault(customer_id, agent_id)
        for conv in waiting:

            def eligible(pk: Any, conv: Conversation = conv) -> bool:
                agent = agents[pk]
                if agent.load >= agent.max_concurrent_conversations:
                    return False
                return conv.team_id is None or conv.team_id in team_ids[pk]

            chosen = None
            reason = "auto_least_loaded"
            prev = previous.get(conv.customer_id)
            if prev in agents and eligible(prev):
                chosen, reason = prev, "auto_previous_agent"
            else:
                candidates = [pk for pk in agents if eligible(pk)]
                if candidates:
                    chosen = min(
                        candidates,
                        key=lambda pk: (
                            agents[pk].load,
                            agents[pk].presence_changed_at or timezone.now(),
                            str(pk),
                        ),
                    )
            if chosen is None:
                continue
            conversation_assign(conversation=conv, agent=agents[chosen], reason=reason)
            agents[chosen].load += 1
            done.append((conv.pk, reason))
    return done


def conversation_return_unanswered(*, now: datetime | None = None) -> list[int]:
    """Conversations of agents away or offline for longer than
    ``CONVERSATIONS_RETURN_AFTER_MINUTES`` whose customer is waiting for an answer (the last
    message is the customer's, or nobody answered yet) go back to the waiting queue; the
    event records why (``agent_offline`` / ``agent_away``)."""
    now = now or timezone.now()
    minutes = getattr(settings, "CONVERSATIONS_RETURN_AFTER_MINUTES", 5)
    cutoff = now - timedelta(minutes=minutes)
    absent = {
        pk: presence
        for pk, presence in User.objects.filter(
            presence__in=[Presence.OFFLINE, Presence.AWAY], presence_changed_at__lt=cutoff
        ).values_list("pk", "presence")
    }
    if not absent:
        return []
    returned: list[int] = []
    candidates = Conversation.objects.filter(
        state=Conversation.State.ASSIGNED, assigned_agent_id__in=list(absent)
    ).filter(
        Q(last_message__direction=Message.Direction.INBOUND) | Q(first_response_at__isnull=True)
    )
    for conv in candidates:
        reason = f"agent_{absent[conv.assigned_agent_id]}"
        try:
            conversation_unassign(conversation=conv, reason=reason)
        except InvalidTransition:
            continue  # claimed or closed meanwhile
        returned.append(conv.pk)
    if returned:
        autoassign_on_commit()
    return returned


def live_events_prune(*, now: datetime | None = None) -> int:
    """Delete live events older than ``CONSOLE_EVENT_RETENTION_MINUTES`` (catch-up window)."""
    now = now or timezone.now()
    minutes = getattr(settings, "CONSOLE_EVENT_RETENTION_MINUTES", 360)
    deleted, _rows = LiveEvent.objects.filter(
        created_at__lt=now - timedelta(minutes=minutes)
    ).delete()
    return deleted


def conversation_record_bot_decision(
    *, conversation_id: int, data: dict[str, Any], intent: str = ""
) -> ConversationEvent:
    """Record the bot's decision as a system line (figures and labels only, never customer
    text) and show it live on the console. Call inside the decision's transaction.

    ``intent``: what the conversation is about, when this decision tells (the bot decides
    which intents say so); kept on the conversation for the dashboard's volume by intent.
    """
    if intent:
        Conversation.objects.filter(pk=conversation_id).exclude(intent=intent[:40]).update(
            intent=intent[:40]
        )
    event = ConversationEvent.objects.create(
        conversation_id=conversation_id, kind=ConversationEvent.Kind.BOT_DECISION, data=data
    )
    events.publish_conversation(
        conversation_id=conversation_id, kind="conversation.event", data={"event_id": event.pk}
    )
    return event


# --- Supervisors' actions (the admin) -------------------------------------------------------------


def conversation_may_supervise(*, user: User, conversation: Conversation) -> bool:
    """Admins any conversation; supervisors those of their teams and those without a team
    (the same conversations the console shows them, minus other teams' ones)."""
    if not _is_console_staff(user) or not _is_supervisor(user):
        return False
    if user.has_role(Role.ADMIN) or conversation.team_id is None:
        return True
    return user.teams.filter(pk=conversation.team_id).exists()


class SupervisorAction:
    REASSIGN = "reassign"
    TRANSFER = "transfer"
    PRIORITY = "priority"
    CLOSE = "close"
    RETURN_TO_QUEUE = "return_to_queue"
    REQUEST_KIND = "request_kind"


def conversation_supervise(
    *,
    conversation: Conversation,
    actor: User,
    action: str,
    agent: User | None = None,
    team: Team | None = None,
    priority: int | None = None,
    resolution: str = "",
    note: str = "",
    request_kind: str = "",
) -> Conversation:
    """One door for a supervisor's action on one conversation (the admin's bulk actions).

    Refuses (``ActionNotAllowed``) anyone who does not supervise the conversation's team
    (``conversation_may_supervise``), then runs the same service the console uses, so every
    rule, event and live update is the console's. ``action`` is a ``SupervisorAction``.
    """
    if not conversation_may_supervise(user=actor, conversation=conversation):
        raise ActionNotAllowed(_("Esta conversa não é de uma equipe que você supervisiona."))
    if action == SupervisorAction.REASSIGN:
        if agent is None:
            raise InvalidInput(_("Escolha um atendente."))
        return conversation_assign_by_staff(conversation=conversation, agent=agent, actor=actor)
    if action == SupervisorAction.TRANSFER:
        return conversation_transfer(
            conversation=conversation, actor=actor, team=team, agent=agent, note=note
        )
    if action == SupervisorAction.PRIORITY:
        if priority is None:
            raise InvalidInput(_("Escolha a prioridade."))
        return conversation_set_priority(conversation=conversation, priority=priority, actor=actor)
    if action == SupervisorAction.CLOSE:
        return conversation_close_by_staff(
            conversation=conversation, actor=actor, resolution=resolution, note=note
        )
    if action == SupervisorAction.RETURN_TO_QUEUE:
        return conversation_unassign(
            conversation=conversation, actor=actor, reason="returned_by_supervisor"
        )
    if action == SupervisorAction.REQUEST_KIND:
        return conversation_set_request_kind(
            conversation=conversation, request_kind=request_kind, actor=actor
        )
    raise InvalidInput(_("Ação desconhecida."))
