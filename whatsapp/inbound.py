"""The inbound path: Meta's webhook events into customers, conversations and messages.

Two steps, so the acknowledgement never depends on the slow part:

1. ``event_receive`` (in the request): verify the signature over the raw body, check it is an
   envelope, store it as a ``WebhookEvent``. Only then does the view answer 200.
2. ``events_process_pending`` (in Celery, queue ``webhooks``, started by a cheap "kick" from
   the acknowledgement): claim pending events in batches, parse every entry, change, message
   and status, and apply them through the conversations services, one commit per batch.
   Idempotent: processing an event twice, or two events carrying the same wamid, changes
   nothing the second time. ``event_process`` does the same for one event (the sweeper).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from compliance.services import (
    consent_revoke_by_keyword,
    dsr_deliver_awaiting,
    dsr_detect_and_open,
    dsr_intake_reply,
    service_record_for_protocol,
    service_record_text,
)
from conversations import services as conv_services
from conversations.csat import csat_try_record
from conversations.models import Conversation, Message
from ispsupport import requestid
from whatsapp.models import EarlyStatus, WebhookEvent
from whatsapp.parsing import (
    Change,
    InboundMessage,
    PayloadError,
    StatusUpdate,
    check_envelope,
    parse_envelope,
)
from whatsapp.templates import template_apply_status_update

logger = logging.getLogger(__name__)

# Meta retries unacknowledged webhooks for up to 7 days: a message that old must not get an
# automatic bot reply as if the customer had just written; it goes to a person instead.
STALE_INBOUND_AFTER = timedelta(hours=1)


class _DuplicateMessage(Exception):
    """Raised inside a message's savepoint to roll it back: the wamid is already stored."""


class SignatureError(Exception):
    """The X-Hub-Signature-256 header is missing or does not match the body."""


def signature_is_valid(body: bytes, header: str | None, secret: str | None = None) -> bool:
    """Check Meta's ``X-Hub-Signature-256: sha256=<hex>`` over the exact raw body.

    Constant-time comparison; any malformed header is simply invalid.
    """
    secret = settings.WHATSAPP_APP_SECRET if secret is None else secret
    if not header or not header.startswith("sha256=") or not secret:
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header[len("sha256=") :].strip().lower())


def sign(body: bytes, secret: str | None = None) -> str:
    """The header value Meta would send for ``body`` (used by the simulator and tests)."""
    secret = settings.WHATSAPP_APP_SECRET if secret is None else secret
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def event_receive(*, body: bytes, signature: str | None, request_id: str = "") -> WebhookEvent:
    """Verify, check and durably store one webhook POST; enqueue its processing after commit.

    Raises ``SignatureError`` (→ 403) before looking at the body, ``PayloadError`` (→ 400) for
    a body that is not an envelope; in both cases nothing is stored. A database error
    propagates (→ 5xx, so Meta retries): we never acknowledge what we did not keep.
    """
    if not signature_is_valid(body, signature):
        raise SignatureError()
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise PayloadError("body is not valid UTF-8") from None
    check_envelope(text)
    event = WebhookEvent.objects.create(
        body=text,
        body_sha256=hashlib.sha256(body).hexdigest(),
        request_id=request_id[:64],
    )
    transaction.on_commit(requestid.bind(kick_processing))
    return event


# The acknowledgement path sets this key (one cheap cache write) instead of publishing a Celery
# message per event; the task that the first kick starts drains every pending event in batches
# and clears the key when it finds no more, so events are processed within a batch's time.
KICK_KEY = "whatsapp:webhook-kick"
KICK_TTL_SECONDS = 5
BATCH_SIZE = 100


def kick_processing() -> None:
    """Make sure a worker is draining pending events (at most one kick per TTL)."""
    from whatsapp.tasks.inbound import process_pending_webhook_events

    try:
        if cache.add(KICK_KEY, "1", timeout=KICK_TTL_SECONDS):
            process_pending_webhook_events.delay()
    except Exception:
        # Cache or broker unreachable: the event is stored; the sweeper dispatches it later.
        logger.exception("webhook: could not start processing")


@dataclass
class ProcessReport:
    """What one event contained and what happened to it (counts only: safe to log)."""

    messages_new: int = 0
    messages_duplicate: int = 0
    messages_failed: int = 0
    modifications: int = 0
    statuses_applied: int = 0
    statuses_early: int = 0
    statuses_ignored: int = 0
    errors_reported: int = 0
    changes_ignored: int = 0
    skipped: int = 0
    followups: list[Callable[[], None]] = field(default_factory=list, repr=False)

    def add(self, other: ProcessReport) -> None:
        """Sum the counts of ``other`` into this report (for a batch of events)."""
        for name in (
            "messages_new",
            "messages_duplicate",
            "messages_failed",
            "modifications",
            "statuses_applied",
            "statuses_early",
            "statuses_ignored",
            "errors_reported",
            "changes_ignored",
            "skipped",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))


def event_process(*, event_id: int) -> ProcessReport | None:
    """Apply one stored event. Safe to call again for the same event (nothing changes)."""
    with transaction.atomic():
        event = WebhookEvent.objects.select_for_update().filter(pk=event_id).first()
        if event is None or event.status in (
            WebhookEvent.Status.PROCESSED,
            WebhookEvent.Status.IGNORED,
        ):
            return None
        report = _process_locked_event(event)
    _log_report(report, events=1)
    return report


def events_process_pending(*, batch_size: int = BATCH_SIZE, max_batches: int = 1000) -> int:
    """Drain pending events oldest first, ``batch_size`` per transaction; return how many.

    Workers claim disjoint batches (``SKIP LOCKED`` on PostgreSQL), so several can drain at
    once. One commit per batch instead of per event is what makes the backlog drain at the
    acknowledgement rate.
    """
    done = 0
    for _batch in range(max_batches):
        count = _process_one_batch(batch_size)
        done += count
        if count:
            continue
        # Nothing left: allow the next acknowledgement to kick a worker, then look once more
        # so an event stored between our last look and the delete is not left waiting.
        cache.delete(KICK_KEY)
        count = _process_one_batch(batch_size)
        done += count
        if not count:
            break
    return done


def _process_one_batch(batch_size: int) -> int:
    report = ProcessReport()
    with transaction.atomic():
        events = list(
            WebhookEvent.objects.select_for_update(skip_locked=True)
            .filter(status=WebhookEvent.Status.RECEIVED)
            .order_by("received_at", "pk")[:batch_size]
        )
        for event in events:
            _process_locked_event(event, report)
    if events:
        _log_report(report, events=len(events))
    return len(events)


@requestid.using(lambda event, *_args, **_kwargs: event.request_id)
def _process_locked_event(event: WebhookEvent, batch: ProcessReport | None = None) -> ProcessReport:
    """Apply a locked event inside the caller's transaction; mark it processed or ignored.

    Each message is applied in its own savepoint: a message that cannot be stored never leaves
    half a conversation, and does not stop the others. Follow-up work (the bot, media
    downloads) is enqueued after commit.
    """
    report = ProcessReport()
    try:
        envelope = parse_envelope(event.body)
    except PayloadError as exc:
        # Only possible for rows written outside event_receive; keep them, mark them.
        _finish(event, WebhookEvent.Status.FAILED, report, note=exc.reason)
        return report
    report.skipped = len(envelope.skipped)
    for change in envelope.changes:
        _process_change(change, report)
    handled = report.messages_new + report.messages_duplicate + report.statuses_applied
    handled += report.statuses_early + report.modifications + report.messages_failed
    status = (
        WebhookEvent.Status.PROCESSED
        if handled or not report.changes_ignored
        else WebhookEvent.Status.IGNORED
    )
    _finish(event, status, report)
    for followup in report.followups:
        # Robust: a broker that refuses one (an outage) must not cost the others, nor the
        # batch its drain; the follow-up sweeper enqueues whatever was refused.
        transaction.on_commit(requestid.bind(followup), robust=True)
    if batch is not None:
        batch.add(report)
    return report


def _log_report(report: ProcessReport, *, events: int) -> None:
    logger.info(
        "webhook events processed",
        extra={
            "events": events,
            "messages_new": report.messages_new,
            "messages_duplicate": report.messages_duplicate,
            "messages_failed": report.messages_failed,
            "statuses": report.statuses_applied + report.statuses_early,
            "errors_reported": report.errors_reported,
        },
    )


def _finish(event: WebhookEvent, status: str, report: ProcessReport, note: str = "") -> None:
    event.status = status
    event.processed_at = timezone.now()
    event.attempts += 1
    event.message_count = report.messages_new + report.messages_duplicate
    event.status_count = report.statuses_applied + report.statuses_early
    parts = [note] if note else []
    if report.messages_failed:
        parts.append(f"{report.messages_failed} message(s) failed")
    if report.skipped:
        parts.append(f"{report.skipped} item(s) skipped by the parser")
    if report.errors_reported:
        parts.append(f"{report.errors_reported} error(s) reported by Meta")
    event.note = "; ".join(parts)[:255]
    event.save(
        update_fields=[
            "status",
            "processed_at",
            "attempts",
            "message_count",
            "status_count",
            "note",
        ]
    )


def _process_change(change: Change, report: ProcessReport) -> None:
    if change.field == "message_template_status_update":
        template_apply_status_update(change.raw_value)
        return
    if change.field != "messages":
        report.changes_ignored += 1
        logger.info("webhook: ignoring field", extra={"field": change.field[:50]})
        return
    if change.phone_number_id not in settings.WHATSAPP_PHONE_NUMBER_IDS:
        report.changes_ignored += 1
        logger.warning(
            "webhook: event for a number we do not serve",
            extra={"phone_number_id": (change.phone_number_id or "")[:32]},
        )
        return
    for error in change.errors:
        report.errors_reported += 1
        logger.warning(
            "webhook: Meta reported an error", extra={"code": error.code, "title": error.title}
        )
    for status in change.statuses:
        _apply_status(status, report)
    # Oldest first, so each customer's messages are stored (and answered) in the order written.
    for message in sorted(change.messages, key=lambda m: m.timestamp):
        try:
            with transaction.atomic():
                _apply_message(change, message, report)
        except _DuplicateMessage:
            report.messages_duplicate += 1
        except Exception:
            report.messages_failed += 1
            logger.exception("webhook: message could not be stored", extra={"kind": message.kind})


def _apply_status(status: StatusUpdate, report: ProcessReport) -> None:
    if status.status not in ("sent", "delivered", "read", "played", "failed"):
        report.statuses_ignored += 1
        return
    error = status.errors[0] if status.errors else None
    kwargs = {
        "wamid": status.wamid[:191],
        "status": status.status,
        "timestamp": status.timestamp,
        "error_code": error.code if error else None,
        "error_title": error.title if error else "",
        "error_details": (error.details or error.message) if error else "",
    }
    if conv_services.message_update_delivery(**kwargs):
        report.statuses_applied += 1
        if error and error.code == 131047:
            message = (
                Message.objects.filter(wamid=kwargs["wamid"]).select_related("conversation").first()
            )
            if message is not None:
                conv_services.conversation_require_template(conversation=message.conversation)
        return
    if Message.objects.filter(wamid=kwargs["wamid"]).exists():
        report.statuses_applied += 1  # known message, status not newer: nothing to do
        return
    # Not stored yet: Meta's status outran our record of the send. Keep it for later.
    EarlyStatus.objects.get_or_create(
        wamid=kwargs["wamid"],
        status=status.status,
        defaults={k: v for k, v in kwargs.items() if k not in ("wamid", "status")},
    )
    report.statuses_early += 1


def _apply_message(change: Change, message: InboundMessage, report: ProcessReport) -> None:
    if message.kind == "revoke":
        if message.target_id:
            conv_services.message_apply_revoke(wamid=message.target_id, at=message.timestamp)
        report.modifications += 1
        return
    if message.kind == "edit":
        if message.target_id:
            conv_services.message_apply_edit(
                wamid=message.target_id, text=message.text or "", at=message.timestamp
            )
        report.modifications += 1
        return

    wamid = message.wamid[:191]
    if Message.objects.filter(wamid=wamid).exists():
        # A retry (Meta redelivers for 7 days): decided before touching customers, so a
        # replay can never open a conversation that would hold no message.
        report.messages_duplicate += 1
        return
    contact = message.contact
    if contact and message.from_wa_id and contact.wa_id and contact.wa_id != message.from_wa_id:
        contact = None  # the only contact of the change is someone else: do not borrow a name
    wa_id = message.from_wa_id or (contact.wa_id if contact else None)
    bsuid = message.from_user_id or (contact.user_id if contact else None)
    customer = conv_services.customer_resolve(
        wa_id=wa_id,
        bsuid=bsuid,
        parent_bsuid=(contact.parent_user_id or "") if contact else "",
        name=(contact.name or "") if contact else "",
        username=(contact.username or "") if contact else "",
    )
    if csat_try_record(customer=customer, message=message):  # a survey answer: stays closed
        report.messages_new += 1
        return
    conversation, _opened = conv_services.conversation_get_or_open(
        customer=customer, business_number_id=change.phone_number_id or ""
    )
    media = message.media
    stored, created = conv_services.message_record_inbound(
        conversation=conversation,
        wamid=wamid,
        type=message.kind,
        timestamp=message.timestamp,
        text=_display_text(message),
        media=conv_services.MediaInfo(
            media_id=(media.media_id or "")[:128],
            mime_type=(media.mime_type or "")[:100],
            sha256=(media.sha256 or "")[:100],
            filename=media.filename or "",
        )
        if media
        else None,
        context_wamid=((message.reaction_to or message.context_id) or "")[:191],
        payload=message.raw,
        errors=[
            {"code": e.code, "title": e.title, "details": e.details or e.message}
            for e in message.errors
        ],
    )
    if not created:
        # Stored concurrently by another worker: undo anything this savepoint opened.
        raise _DuplicateMessage()
    report.messages_new += 1
    if message.errors:
        report.errors_reported += len(message.errors)
    _plan_followups(stored, conversation, message, report)


def _display_text(message: InboundMessage) -> str:
    """What agents read for this message (the raw payload keeps the rest)."""
    if message.kind == "reaction":
        return message.reaction_emoji or ""
    if message.kind == "location" and message.location:
        loc = message.location
        label = " — ".join(str(v) for v in (loc.get("name"), loc.get("address")) if v)
        return label
    if message.kind == "contacts" and message.shared_contacts:
        names = [
            str((c.get("name") or {}).get("formatted_name") or "")
            for c in message.shared_contacts
            if isinstance(c, dict)
        ]
        return ", ".join(n for n in names if n)
    return message.text or ""


def _plan_followups(
    stored: Message, conversation: Conversation, message: InboundMessage, report: ProcessReport
) -> None:
    """Decide what happens next to a new customer message; run it after commit."""
    if message.kind in ("reaction", "system", "unsupported"):
        return
    stale = timezone.now() - message.timestamp > STALE_INBOUND_AFTER
    if not stale:
        # Answers announced by template outside the window go out now that it is open again.
        dsr_deliver_awaiting(conversation.customer)
    if message.kind == "text" and not stale and _answer_rights_request(stored, conversation):
        return
    in_bot = conversation.state == Conversation.State.BOT
    if in_bot and stale:
        conv_services.conversation_escalate(
            conversation=conversation,
            reason="stale_message",
            data={"message_id": stored.pk},
        )
        in_bot = False
    if message.media and message.kind in ("image", "audio", "video", "document", "sticker"):
        report.followups.append(_download_media(stored.pk, notify_bot=in_bot))
    elif in_bot:
        report.followups.append(_run_bot(stored.pk))


_PROTOCOL_HISTORY = re.compile(
    r"\b(?:hist[oó]rico|registro|andamento)\b.*?\bprotocolo\b\D{0,20}(\d{14})\b",
    re.IGNORECASE | re.DOTALL,
)


def _answer_rights_request(stored: Message, conversation: Conversation) -> bool:
    """Answer at once what the customer is entitled to without the bot or an agent.

    - "SAIR"/"PARAR"/"STOP": marketing consent revoked at once (LGPD Art. 8 §5), confirmed.
    - A data-subject request ("quero meus dados", "apagar meus dados"…): opened with its
      15-day clock (Art. 18, 19), the customer told its number and deadline.
    - "histórico do protocolo <número>": the service record of one of *their* protocols
      (Decreto 11.034 / RGC), never someone else's.

    Returns True when the message was one of these (the bot then stays out of it).
    """
    customer = conversation.customer
    text = stored.text
    reply: str | None = None
    if consent_revoke_by_keyword(customer, text, wamid=stored.wamid or ""):
        reply = str(
            _(
                "Pronto: você não vai mais receber mensagens promocionais de %(isp)s. "
                "Os avisos do seu atendimento e da sua conta continuam chegando normalmente."
            )
            % {"isp": settings.ISP_NAME}
        )
    elif (request := dsr_detect_and_open(customer, text)) is not None:
        reply = str(dsr_intake_reply(request))
    elif (match := _PROTOCOL_HISTORY.search(text)) is not None:
        protocol = match.group(1)
        owned = customer.conversations.filter(protocol=protocol).exists()
        record = service_record_for_protocol(protocol) if owned else None
        reply = (
            str(service_record_text(record))
            if record
            else str(
                _(
                    "Não encontramos o protocolo %(protocol)s entre os seus atendimentos. "
                    "Confira o número e envie de novo."
                )
                % {"protocol": protocol}
            )
        )
    if reply is None:
        return False
    conv_services.message_record_outbound(
        conversation=conversation, sender_kind=Message.SenderKind.BOT, text=reply
    )
    return True


# What the bot never reads: no bot turn is planned for these kinds (see _plan_followups).
_NO_FOLLOWUP_KINDS = ("reaction", "system", "unsupported")
_MEDIA_KINDS = ("image", "audio", "video", "document", "sticker")


def messages_awaiting_followup(
    *, older_than: timedelta, limit: int = 200, now: datetime | None = None
) -> list[Message]:
    """Customers' messages whose bot turn never came: for the follow-up sweeper.

    The bot turn (or the media download before it) is enqueued after the message's commit;
    when the broker refuses it (an outage) nothing else would ever answer that customer. Picked:
    conversations still with the bot whose customer wrote between ``older_than`` and
    ``STALE_INBOUND_AFTER`` ago, whose latest inbound message (of a kind the bot reads) has no
    ``BotDecision`` and was followed by no message of the bot (a rights request is answered
    without a decision). Oldest first, at most ``limit``.
    """
    from django.db.models import Exists, OuterRef, Subquery

    from bot.models import BotDecision

    now = now or timezone.now()
    latest_inbound = (
        Message.objects.filter(conversation_id=OuterRef("pk"), direction=Message.Direction.INBOUND)
        .exclude(type__in=_NO_FOLLOWUP_KINDS)
        .order_by("-created_at", "-pk")
    )
    conversations = (
        Conversation.objects.filter(
            state=Conversation.State.BOT,
            last_customer_message_at__gte=now - STALE_INBOUND_AFTER,
            last_customer_message_at__lt=now - older_than,
        )
        .annotate(
            latest_id=Subquery(latest_inbound.values("pk")[:1]),
            latest_at=Subquery(latest_inbound.values("created_at")[:1]),
        )
        .filter(latest_id__isnull=False, latest_at__lt=now - older_than)
        .exclude(Exists(BotDecision.objects.filter(message_id=OuterRef("latest_id"))))
        .exclude(
            Exists(
                Message.objects.filter(
                    conversation_id=OuterRef("pk"),
                    direction=Message.Direction.OUTBOUND,
                    sender_kind=Message.SenderKind.BOT,
                    created_at__gte=OuterRef("latest_at"),
                )
            )
        )
        .order_by("last_customer_message_at")
        .values_list("latest_id", flat=True)[:limit]
    )
    return list(Message.objects.filter(pk__in=list(conversations)).order_by("created_at", "pk"))


def followup_redispatch(message: Message) -> str:
    """Enqueue the follow-up a message's commit should have enqueued: ``media`` or ``bot``."""
    if message.type in _MEDIA_KINDS and message.media_id and not message.media_file:
        _download_media(message.pk, notify_bot=True)()
        return "media"
    _run_bot(message.pk)()
    return "bot"


def _download_media(message_id: int, *, notify_bot: bool) -> Callable[[], None]:
    def run() -> None:
        from whatsapp.tasks.media import download_media

        download_media.delay(message_id, notify_bot=notify_bot)

    return run


def _run_bot(message_id: int) -> Callable[[], None]:
    def run() -> None:
        from bot.tasks import handle_inbound_message

        handle_inbound_message.delay(message_id)

    return run


def events_pending(*, older_than: timedelta, limit: int = 500) -> list[int]:
    """Ids of events stored but not processed for longer than ``older_than`` (the sweeper)."""
    cutoff: datetime = timezone.now() - older_than
    return list(
        WebhookEvent.objects.filter(status=WebhookEvent.Status.RECEIVED, received_at__lt=cutoff)
        .order_by("received_at")
        .values_list("pk", flat=True)[:limit]
    )
