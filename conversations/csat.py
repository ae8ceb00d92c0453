"""CSAT: the satisfaction survey sent when a conversation closes, and the customer's answers.

The writes of one feature, kept beside ``services.py`` (which calls in here when it closes):

- ``csat_request_locked``: called by ``services.conversation_close`` on the locked row, before
  it becomes closed. Queues the survey — a WhatsApp list message with five rows (Meta allows
  at most three reply buttons) whose ids are ``csat:<conversation id>:<1-5>`` — when the
  24-hour window is open. **At most once per conversation**: the request is claimed by one
  conditional UPDATE of ``csat_requested_at`` (NULL → now), so a retried close or a
  concurrent task finds it taken and queues nothing.
- ``csat_try_record``: called by the inbound path for each new customer message, before it
  would find or open a conversation. A rating (``list_reply``/``button_reply`` with a survey
  id) is stored on the closed conversation it rates; a free text within
  ``CONVERSATIONS_CSAT_COMMENT_MINUTES`` after the rating is that rating's comment. Either
  way the message is kept on the closed conversation (its wamid keeps replays idempotent) and
  True is returned: the caller opens no conversation and does not wake the bot. Everything
  else returns False and flows as before.

The comment is personal data: encrypted at rest (``Conversation.csat_comment``), exported,
erased and expired by ``conversations.privacy``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _

from compliance.services import dsr_detect_kind, protocol_moment
from compliance.services.consent import is_marketing_stop_keyword
from conversations import events, metrics
from conversations.models import Conversation, Customer, Message

logger = logging.getLogger(__name__)

REPLY_ID = re.compile(r"^csat:(\d{1,18}):([1-5])$")
COMMENT_MAX_LENGTH = 4096
# No survey for contacts that were not a real service (nothing to rate).
NOT_RATED = (Conversation.Resolution.SPAM, Conversation.Resolution.DUPLICATE)


class CustomerMessage(Protocol):
    """What the inbound path knows about a customer's message (whatsapp.parsing's shape)."""

    wamid: str
    kind: str
    timestamp: datetime
    text: str | None
    reply_id: str | None
    raw: dict[str, Any]


# --- the survey ---------------------------------------------------------------------------------


def csat_interactive(conversation: Conversation, *, closed_at: datetime) -> dict[str, Any]:
    """The survey as a Graph interactive list (5 rows; ids ``csat:<conversation>:<1-5>``)."""
    labels = {
        5: _("5 · Excelente"),
        4: _("4 · Bom"),
        3: _("3 · Regular"),
        2: _("2 · Ruim"),
        1: _("1 · Péssimo"),
    }
    return {
        "type": "list",
        "header": {"type": "text", "text": str(_("Pesquisa de satisfação"))},
        "body": {"text": csat_text(conversation, closed_at=closed_at)},
        "footer": {"text": str(_("Depois, se quiser, deixe um comentário."))},
        "action": {
            "button": str(_("Avaliar")),
            "sections": [
                {
                    "title": str(_("Sua nota")),
                    "rows": [
                        {"id": f"csat:{conversation.pk}:{score}", "title": str(label)}
                        for score, label in labels.items()
                    ],
                }
            ],
        },
    }


def csat_text(conversation: Conversation, *, closed_at: datetime) -> str:
    """The survey's text, which also gives the protocol again with its dates of registration
    and conclusion (RGC 765 art. 9; Decreto 11.034: the consumer is told the demand ended)."""
    return str(
        _(
            "Seu atendimento (protocolo %(protocol)s, registrado em %(opened)s) foi encerrado em "
            "%(closed)s (horário de Brasília). Como você avalia o atendimento?"
        )
        % {
            "protocol": conversation.protocol,
            "opened": protocol_moment(conversation.opened_at),
            "closed": protocol_moment(closed_at),
        }
    )


def csat_enabled() -> bool:
    return bool(getattr(settings, "CONVERSATIONS_CSAT_ENABLED", True))


def comment_window() -> timedelta:
    return timedelta(minutes=getattr(settings, "CONVERSATIONS_CSAT_COMMENT_MINUTES", 10))


def csat_request_locked(
    *, conversation: Conversation, resolution: str, now: datetime | None = None
) -> Message | None:
    """Queue the survey for a conversation about to close; None when none is due.

    Call inside the close's transaction with the row locked (``select_for_update``), while the
    conversation is still open (the outbox refuses closed ones). Nothing is queued when CSAT
    is off, for spam/duplicates, outside the 24-hour window, or when a survey was already
    requested. The claim and the message share a savepoint: if the message cannot be queued
    the claim is undone, and the close goes on without a survey.
    """
    from conversations import services

    now = now or timezone.now()
    if not csat_enabled() or resolution in NOT_RATED or not conversation.window_is_open(now):
        return None
    try:
        with transaction.atomic():
            claimed = Conversation.objects.filter(
                pk=conversation.pk, csat_requested_at__isnull=True
            ).update(csat_requested_at=now)
            if not claimed:
                return None
            # The customer reads Portuguese, whatever language the agent's screen is in.
            with translation.override(settings.LANGUAGE_CODE):
                text = csat_text(conversation, closed_at=now)
                interactive = csat_interactive(conversation, closed_at=now)
            message = services.message_record_outbound(
                conversation=conversation,
                sender_kind=Message.SenderKind.SYSTEM,
                type=Message.Type.INTERACTIVE,
                text=text,
                payload={"interactive": interactive},
                now=now,
            )
    except services.ServiceError as exc:
        logger.info("csat: survey not queued", extra={"error": exc.code})
        return None
    conversation.csat_requested_at = now
    metrics.csat_survey_sent()
    return message


def csat_closing_text(conversation: Conversation, *, closed_at: datetime) -> str:
    """The goodbye without a survey: the protocol again with its dates (RGC 765 art. 9)."""
    return str(
        _(
            "Seu atendimento (protocolo %(protocol)s, registrado em %(opened)s) foi encerrado em "
            "%(closed)s (horário de Brasília). Se precisar, é só mandar uma mensagem."
        )
        % {
            "protocol": conversation.protocol,
            "opened": protocol_moment(conversation.opened_at),
            "closed": protocol_moment(closed_at),
        }
    )


def csat_closing_notice_locked(
    *, conversation: Conversation, resolution: str, now: datetime | None = None
) -> Message | None:
    """Queue the protocol and its dates for a conversation about to close, when no survey
    goes; None when nothing is sent.

    As ``csat_request_locked``: inside the close's transaction, the row locked and still open.
    Nothing for spam or duplicates (nobody to tell, or told in the other conversation) or
    outside the 24-hour window (a free-form message would be refused; the protocol was given
    at the first message and stays in the history the customer can ask for). If the message
    cannot be queued the close goes on without it.
    """
    from conversations import services

    now = now or timezone.now()
    if resolution in NOT_RATED or not conversation.window_is_open(now):
        return None
    try:
        with transaction.atomic():
            with translation.override(settings.LANGUAGE_CODE):
                text = csat_closing_text(conversation, closed_at=now)
            return services.message_record_outbound(
                conversation=conversation,
                sender_kind=Message.SenderKind.SYSTEM,
                text=text,
                now=now,
            )
    except services.ServiceError as exc:
        logger.info("close: protocol notice not queued", extra={"error": exc.code})
        return None


# --- the answers --------------------------------------------------------------------------------


def parse_reply_id(reply_id: str | None) -> tuple[int, int] | None:
    """``csat:<conversation id>:<score>`` → ``(conversation id, score)``; None otherwise."""
    match = REPLY_ID.match((reply_id or "").strip())
    if match is None:
        return None
    return int(match.group(1)), int(match.group(2))


def csat_try_record(*, customer: Customer, message: CustomerMessage) -> bool:
    """Record ``message`` as a survey answer or its comment; False when it is neither.

    Call inside the inbound message's transaction, after the customer is resolved and before
    a conversation is found or opened. True means the message is stored on the closed
    conversation it belongs to and nothing else must happen to it (no new conversation, no
    bot). Idempotent: a replayed wamid is stored once and never records twice.
    """
    if message.kind == "interactive":
        parsed = parse_reply_id(message.reply_id)
        if parsed is None:
            return False
        conversation_id, score = parsed
        conversation = Conversation.objects.filter(
            pk=conversation_id, customer=customer, state=Conversation.State.CLOSED
        ).first()
        if conversation is None:
            return False  # someone else's or an open conversation: not a survey answer
        if _store(conversation, message):
            csat_record_score(conversation=conversation, score=score, at=message.timestamp)
        return True
    if message.kind == "text":
        text = _comment_text(message)
        if text is None:
            return False
        conversation = _awaiting_comment(customer, message.timestamp)
        if conversation is None:
            return False
        if _store(conversation, message):
            csat_record_comment(conversation=conversation, text=text, at=message.timestamp)
        return True
    return False


def csat_may_be_answers(*, messages: Sequence[tuple[Customer, CustomerMessage]]) -> list[bool]:
    """For each (customer, message): could ``csat_try_record`` take it? False is certain, True
    means ask it. One query for the whole list (the webhook drain asks for a batch), so the
    inbound path asks ``csat_try_record`` only about the few messages that may be answers."""
    texts = [
        (customer, message)
        for customer, message in messages
        if message.kind == "text" and _comment_text(message) is not None
    ]
    rated: set[int] = set()
    if texts:
        times = [message.timestamp for _customer, message in texts]
        rated = set(
            Conversation.objects.filter(
                _rated_without_comment_q(since=min(times) - comment_window(), until=max(times)),
                customer_id__in={customer.pk for customer, _message in texts},
            ).values_list("customer_id", flat=True)
        )
    answers = []
    for customer, message in messages:
        if message.kind == "interactive":
            answers.append(parse_reply_id(message.reply_id) is not None)
        else:
            answers.append(
                message.kind == "text"
                and customer.pk in rated
                and _comment_text(message) is not None
            )
    return answers


def _comment_text(message: CustomerMessage) -> str | None:
    """The text of a message that may be a comment; None for an empty one, for "SAIR" and
    for a data-rights request, which are never swallowed as a comment (LGPD Art. 8 §5, 18)."""
    text = (message.text or "").strip()
    if not text or is_marketing_stop_keyword(text) or dsr_detect_kind(text) is not None:
        return None
    return text


def _rated_without_comment_q(*, since: datetime, until: datetime) -> Q:
    """Closed conversations rated between ``since`` and ``until`` that have no comment yet."""
    return Q(
        state=Conversation.State.CLOSED,
        csat_answered_at__isnull=False,
        csat_answered_at__lte=until,
        csat_answered_at__gte=since,
        csat_comment_at__isnull=True,
    )


def _awaiting_comment(customer: Customer, at: datetime) -> Conversation | None:
    """The customer's conversation rated within the comment window and still without a
    comment, when the customer has no open conversation (then the text belongs there).

    One query on the customer's conversations (their foreign-key index); the second runs
    only after a rating. The inbound path asks only for customers ``csat_may_be_answers``
    found rated.
    """
    rated = (
        customer.conversations.filter(
            _rated_without_comment_q(since=at - comment_window(), until=at)
        )
        .order_by("-csat_answered_at")
        .first()
    )
    if rated is None or customer.conversations.exclude(state=Conversation.State.CLOSED).exists():
        return None
    return rated


def _store(conversation: Conversation, message: CustomerMessage) -> bool:
    """Keep the customer's message on the closed conversation; False when a concurrent
    worker stored this wamid first (it records the answer, not us)."""
    from conversations import services

    title = message.text or ""
    _stored, created = services.message_record_inbound(
        conversation=conversation,
        wamid=message.wamid[:191],
        type=message.kind,
        timestamp=message.timestamp,
        text=title,
        payload=message.raw,
        count_unread=False,
    )
    return created


def csat_record_score(*, conversation: Conversation, score: int, at: datetime) -> bool:
    """Store the rating (1–5) once; True when this call stored it.

    A second answer to the same survey changes nothing (the first one counts). When stored,
    the customer is thanked and invited to comment, and the dashboard and console are told.
    """
    if score not in range(1, 6):
        raise ValueError(score)
    with transaction.atomic():
        stored = (
            Conversation.objects.filter(pk=conversation.pk, csat_score__isnull=True).update(
                csat_score=score, csat_answered_at=at
            )
            > 0
        )
        if not stored:
            return False
        metrics.csat_rated(score)
        conversation.csat_score, conversation.csat_answered_at = score, at
        events.publish_conversation(
            conversation_id=conversation.pk, kind="conversation.csat", data={"score": score}
        )
        minutes = int(comment_window().total_seconds() // 60)
        with translation.override(settings.LANGUAGE_CODE):
            text = str(
                _(
                    "Obrigado pela sua avaliação! Se quiser, escreva nos próximos %(minutes)d "
                    "minutos um comentário sobre o atendimento."
                )
                % {"minutes": minutes}
            )
        _send_system(conversation, text)
    return True


def csat_record_comment(*, conversation: Conversation, text: str, at: datetime) -> bool:
    """Store the optional comment once (encrypted); True when this call stored it."""
    text = text.strip()[:COMMENT_MAX_LENGTH]
    if not text:
        return False
    with transaction.atomic():
        stored = (
            Conversation.objects.filter(pk=conversation.pk, csat_comment_at__isnull=True).update(
                csat_comment=text, csat_comment_at=at
            )
            > 0
        )
        if not stored:
            return False
        conversation.csat_comment, conversation.csat_comment_at = text, at
        events.publish_conversation(conversation_id=conversation.pk, kind="conversation.csat")
        with translation.override(settings.LANGUAGE_CODE):
            thanks = str(_("Recebemos o seu comentário. Obrigado!"))
        _send_system(conversation, thanks)
    return True


def _send_system(conversation: Conversation, text: str) -> None:
    """A short system message on the closed conversation (the window is open: the customer
    just wrote); never fails the answer being recorded."""
    from conversations import services

    try:
        with transaction.atomic():
            services.message_record_outbound(
                conversation=conversation,
                sender_kind=Message.SenderKind.SYSTEM,
                text=text,
                allow_closed=True,
            )
    except services.ServiceError as exc:
        logger.info("csat: follow-up not queued", extra={"error": exc.code})
