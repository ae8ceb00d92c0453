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
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import InterfaceError, OperationalError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from compliance.services import (
    consent_revoke_by_keyword,
    dsr_customers_with_answers_awaiting,
    dsr_deliver_awaiting,
    dsr_detect_and_open,
    dsr_intake_reply,
    service_record_for_protocol,
    service_record_text,
)
from conversations import events as live_events
from conversations import ingest
from conversations import services as conv_services
from conversations.csat import csat_may_be_answers, csat_try_record
from conversations.models import Conversation, Customer, Message
from ispsupport import requestid
from whatsapp import metrics
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
    with live_events.publishing_batch(), transaction.atomic():
        event = WebhookEvent.objects.select_for_update().filter(pk=event_id).first()
        if event is None or event.status in (
            WebhookEvent.Status.PROCESSED,
            WebhookEvent.Status.IGNORED,
        ):
            return None
        (report,) = _process_locked_events([event])
    _log_report(report, events=1)
    return report


def events_process_pending(*, batch_size: int = BATCH_SIZE, max_batches: int = 1000) -> int:
    """Drain pending events oldest first, ``batch_size`` per transaction; return how many.

    Workers claim disjoint batches (``SKIP LOCKED`` on PostgreSQL), so several can drain at
    once. Each batch is applied as a batch (``_process_locked_events``): a few queries per
    batch rather than per message, one commit, the console's live events and the follow-up
    tasks sent together after it.
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
    with live_events.publishing_batch(), transaction.atomic():
        events = list(
            WebhookEvent.objects.select_for_update(skip_locked=True)
            .filter(status=WebhookEvent.Status.RECEIVED)
            .order_by("received_at", "pk")[:batch_size]
        )
        reports = _process_locked_events(events)
    if events:
        total = ProcessReport()
        for report in reports:
            total.add(report)
        _log_report(total, events=len(events))
    return len(events)


# --- One batch of locked events -----------------------------------------------------------------


@dataclass(slots=True)
class _Item:
    """A message or status of one event, with the report and request id it counts under."""

    change: Change
    report: ProcessReport
    request_id: str
    message: InboundMessage | None = None
    status: StatusUpdate | None = None

    @property
    def wamid(self) -> str:
        assert self.message is not None
        return self.message.wamid[:191]


@dataclass(slots=True)
class _Outcome:
    item: _Item
    result: str  # "new", "answer" (a survey answer: stored on its closed conversation), …
    followup: tuple[str, int, bool] | None = None  # ("bot"|"media", message id, notify bot)


@dataclass(slots=True)
class _Batch:
    statuses: list[_Item] = field(default_factory=list)
    messages: list[_Item] = field(default_factory=list)
    modifications: list[_Item] = field(default_factory=list)
    followups: list[tuple[str, int, bool, str]] = field(default_factory=list)


def _process_locked_events(events: list[WebhookEvent]) -> list[ProcessReport]:
    """Apply locked events inside the caller's transaction; mark each processed or ignored.

    Every event is parsed first; then the batch's statuses, messages and message edits are
    applied together (see ``_apply_statuses``, ``_apply_messages``). Messages are stored in
    one savepoint for the batch; if anything in it fails, it is rolled back and the messages
    are applied again one at a time, each in its own savepoint (the same code with a batch
    of one): a message that cannot be stored never leaves half a conversation and does not
    stop the others. A transient database error (``_TRANSIENT``) is raised instead, so the
    caller's transaction rolls back and every event of the batch is applied again later.
    Follow-up work (the bot, media downloads) is enqueued after commit.
    """
    batch = _Batch()
    reports: list[ProcessReport] = []
    notes: list[str | None] = []
    for event in events:
        report = ProcessReport()
        reports.append(report)
        with requestid.context(requestid.clean(event.request_id) or requestid.get()) as rid:
            try:
                envelope = parse_envelope(event.body)
            except PayloadError as exc:
                # Only possible for rows written outside event_receive; keep them, mark them.
                notes.append(exc.reason)
                continue
            notes.append(None)
            report.skipped = len(envelope.skipped)
            for change in envelope.changes:
                _collect_change(change, report, rid, batch)
    _apply_statuses(batch.statuses)
    _apply_messages(batch.messages, batch)
    _apply_modifications(batch.modifications)
    for event, report, note in zip(events, reports, notes, strict=True):
        if note is not None:
            status = WebhookEvent.Status.FAILED
        else:
            handled = report.messages_new + report.messages_duplicate + report.statuses_applied
            handled += report.statuses_early + report.modifications + report.messages_failed
            status = (
                WebhookEvent.Status.PROCESSED
                if handled or not report.changes_ignored
                else WebhookEvent.Status.IGNORED
            )
        _finish(event, status, report, note=note or "")
    if events:
        WebhookEvent.objects.bulk_update(events, _FINISH_FIELDS)
        metrics.webhook_events_finished(events)
    if batch.followups:
        followups = batch.followups
        # Robust: a broker that refuses them (an outage) must not cost the batch its drain;
        # the follow-up sweeper enqueues whatever was refused.
        transaction.on_commit(lambda: _dispatch_followups(followups), robust=True)
    return reports


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


_FINISH_FIELDS = ["status", "processed_at", "attempts", "message_count", "status_count", "note"]


def _finish(event: WebhookEvent, status: str, report: ProcessReport, note: str = "") -> None:
    """Set the event's outcome (saved with the rest of the batch: ``_FINISH_FIELDS``)."""
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


def _collect_change(change: Change, report: ProcessReport, rid: str, batch: _Batch) -> None:
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
        if status.status not in ("sent", "delivered", "read", "played", "failed"):
            report.statuses_ignored += 1
            continue
        batch.statuses.append(_Item(change, report, rid, status=status))
    # Oldest first, so each customer's messages are stored (and answered) in the order written.
    for message in sorted(change.messages, key=lambda m: m.timestamp):
        item = _Item(change, report, rid, message=message)
        if message.kind in ("revoke", "edit"):
            batch.modifications.append(item)
        else:
            batch.messages.append(item)


# --- Statuses -----------------------------------------------------------------------------------


def _apply_statuses(items: list[_Item]) -> None:
    """All the batch's statuses in one locked read and a few writes, in arrival order; a
    status for a wamid we do not know yet (Meta's status outran our record of the send) is
    kept in ``EarlyStatus`` for later."""
    if not items:
        return
    updates = []
    for item in items:
        status = item.status
        assert status is not None
        error = status.errors[0] if status.errors else None
        updates.append(
            ingest.DeliveryUpdate(
                wamid=status.wamid[:191],
                status=status.status,
                timestamp=status.timestamp,
                error_code=error.code if error else None,
                error_title=error.title if error else "",
                error_details=(error.details or error.message) if error else "",
                request_id=item.request_id,
            )
        )
    early: list[EarlyStatus] = []
    results = ingest.messages_update_delivery(updates=updates)
    for item, update, result in zip(items, updates, results, strict=True):
        if result.changed:
            item.report.statuses_applied += 1
            if update.error_code == 131047 and result.conversation_id is not None:
                conversation = Conversation.objects.get(pk=result.conversation_id)
                with requestid.context(item.request_id):
                    conv_services.conversation_require_template(conversation=conversation)
        elif result.known:
            item.report.statuses_applied += 1  # known message, status not newer: nothing to do
        else:
            early.append(
                EarlyStatus(
                    wamid=update.wamid,
                    status=update.status,
                    timestamp=update.timestamp,
                    error_code=update.error_code,
                    error_title=update.error_title,
                    error_details=update.error_details,
                )
            )
            item.report.statuses_early += 1
    if early:
        # The first one of a (wamid, status) is kept, as it arrived.
        EarlyStatus.objects.bulk_create(early, ignore_conflicts=True)


# --- Messages -----------------------------------------------------------------------------------


# What the database says about this moment, not about the message: a deadlock, a lock or
# statement timeout, a lost connection. The batch's transaction is rolled back and its events
# stay pending for the task's retry (or the sweeper); marking such a message "failed" would
# lose it. A message the database refuses for what it is (a constraint, bad data) is still
# set aside on its own so it cannot stop the rest of its batch.
_TRANSIENT = (OperationalError, InterfaceError)


def _apply_messages(items: list[_Item], batch: _Batch) -> None:
    """Store the batch's new messages (see ``_process_locked_events``) and count each one."""
    if not items:
        return
    # Retries (Meta redelivers for 7 days) are decided first, in one query, before touching
    # customers: a replay can never open a conversation that would hold no message.
    known = set(
        Message.objects.filter(wamid__in={item.wamid for item in items}).values_list(
            "wamid", flat=True
        )
    )
    pending: list[_Item] = []
    for item in items:
        if item.wamid in known:
            item.report.messages_duplicate += 1
            continue
        known.add(item.wamid)
        if not _contact_identity(item.message).identified:
            item.report.messages_failed += 1
            with requestid.context(item.request_id):
                logger.warning(
                    "webhook: message without a sender id", extra={"kind": item.message.kind}
                )
            continue
        pending.append(item)
    if not pending:
        return
    try:
        with transaction.atomic():
            outcomes = _store(pending)
    except _TRANSIENT:
        raise  # the whole batch again, later (see _TRANSIENT)
    except Exception:
        logger.warning(
            "webhook: batch of messages applied one at a time", extra={"messages": len(pending)}
        )
        outcomes = [outcome for item in pending for outcome in _store_alone(item)]
    for outcome in outcomes:
        report = outcome.item.report
        if outcome.result in ("new", "answer"):
            report.messages_new += 1
            if outcome.result == "new":
                report.errors_reported += len(outcome.item.message.errors)
            if outcome.followup is not None:
                batch.followups.append((*outcome.followup, outcome.item.request_id))
        elif outcome.result == "duplicate":
            report.messages_duplicate += 1
        else:
            report.messages_failed += 1


def _store_alone(item: _Item) -> list[_Outcome]:
    """The same work for one message, in its own savepoint."""
    with requestid.context(item.request_id):
        try:
            with transaction.atomic():
                return _store([item])
        except _DuplicateMessage:
            return [_Outcome(item, "duplicate")]
        except _TRANSIENT:
            raise
        except Exception:
            logger.exception(
                "webhook: message could not be stored", extra={"kind": item.message.kind}
            )
            return [_Outcome(item, "failed")]


def _store(items: list[_Item]) -> list[_Outcome]:
    """Store ``items`` (new wamids with a sender id); raise on anything unexpected.

    Customers are resolved for all of them at once; then the messages go in rounds — the
    first message of every customer, then every customer's second… — so whatever one message
    changes (a conversation opened, a survey answered, a reply sent) is in place before the
    same customer's next one, while different customers share every query.
    """
    customers = ingest.customers_resolve(contacts=[_contact_identity(i.message) for i in items])
    queues: dict[int, list[tuple[_Item, Customer]]] = {}
    for item, customer in zip(items, customers, strict=True):
        queues.setdefault(id(customer), []).append((item, customer))
    awaiting = dsr_customers_with_answers_awaiting({c.pk for c in customers})
    outcomes: list[_Outcome] = []
    depth = max(len(queue) for queue in queues.values())
    for turn in range(depth):
        round_items = [queue[turn] for queue in queues.values() if len(queue) > turn]
        outcomes.extend(_store_round(round_items, awaiting))
    return outcomes


def _store_round(pairs: list[tuple[_Item, Customer]], awaiting: set[int]) -> list[_Outcome]:
    """One message per customer (see ``_store``)."""
    outcomes: list[_Outcome] = []
    rest: list[tuple[_Item, Customer]] = []
    maybe = csat_may_be_answers(messages=[(customer, item.message) for item, customer in pairs])
    for (item, customer), may_be_answer in zip(pairs, maybe, strict=True):
        # A survey answer (or its comment) stays on the closed conversation it rates.
        if may_be_answer:
            with requestid.context(item.request_id):
                if csat_try_record(customer=customer, message=item.message):
                    outcomes.append(_Outcome(item, "answer"))
                    continue
        rest.append((item, customer))
    if not rest:
        return outcomes
    conversations = ingest.conversations_get_or_open(
        openings=[
            ingest.Opening(
                customer=customer,
                business_number_id=item.change.phone_number_id or "",
                request_id=item.request_id,
            )
            for item, customer in rest
        ]
    )
    records = [
        _record(item, conv) for (item, _c), (conv, _o) in zip(rest, conversations, strict=True)
    ]
    stored = ingest.messages_record_inbound(records=records)
    for (item, _customer), (conversation, _opened), (message, created) in zip(
        rest, conversations, stored, strict=True
    ):
        if not created:
            # Stored concurrently by another worker: undo anything this savepoint opened.
            raise _DuplicateMessage()
        outcome = _Outcome(item, "new")
        with requestid.context(item.request_id):
            _plan_followups(message, conversation, item.message, outcome, awaiting)
        outcomes.append(outcome)
    return outcomes


def _contact_identity(message: InboundMessage) -> ingest.ContactIdentity:
    contact = message.contact
    if contact and message.from_wa_id and contact.wa_id and contact.wa_id != message.from_wa_id:
        contact = None  # the only contact of the change is someone else: do not borrow a name
    return ingest.ContactIdentity(
        wa_id=message.from_wa_id or (contact.wa_id if contact else None),
        bsuid=message.from_user_id or (contact.user_id if contact else None),
        parent_bsuid=(contact.parent_user_id or "") if contact else "",
        name=(contact.name or "") if contact else "",
        username=(contact.username or "") if contact else "",
    )


def _record(item: _Item, conversation: Conversation) -> ingest.InboundRecord:
    message = item.message
    media = message.media
    return ingest.InboundRecord(
        conversation=conversation,
        wamid=item.wamid,
        type=message.kind,
        timestamp=message.timestamp,
        text=_display_text(message),
        media=ingest.MediaInfo(
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
        request_id=item.request_id,
    )


def _apply_modifications(items: list[_Item]) -> None:
    """Revokes and edits, in order, after the batch's messages are stored (so an edit finds
    its original even when both came in this batch); each in its own savepoint."""
    for item in items:
        message = item.message
        with requestid.context(item.request_id):
            try:
                with transaction.atomic():
                    if message.kind == "revoke" and message.target_id:
                        conv_services.message_apply_revoke(
                            wamid=message.target_id, at=message.timestamp
                        )
                    elif message.kind == "edit" and message.target_id:
                        conv_services.message_apply_edit(
                            wamid=message.target_id, text=message.text or "", at=message.timestamp
                        )
            except _TRANSIENT:
                raise
            except Exception:
                item.report.messages_failed += 1
                logger.exception(
                    "webhook: message could not be stored", extra={"kind": message.kind}
                )
                continue
        item.report.modifications += 1


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


# What the bot never reads: no bot turn is planned for these kinds (see _plan_followups).
_NO_FOLLOWUP_KINDS = ("reaction", "system", "unsupported")
_MEDIA_KINDS = ("image", "audio", "video", "document", "sticker")


def _plan_followups(
    stored: Message,
    conversation: Conversation,
    message: InboundMessage,
    outcome: _Outcome,
    awaiting: set[int],
) -> None:
    """Decide what happens next to a new customer message; it runs after commit.

    ``awaiting``: the batch's customers with data-rights answers waiting for the window to
    open again (``dsr_customers_with_answers_awaiting``); delivered on their first message.
    """
    if message.kind in _NO_FOLLOWUP_KINDS:
        return
    stale = timezone.now() - message.timestamp > STALE_INBOUND_AFTER
    if not stale and conversation.customer_id in awaiting:
        # Answers announced by template outside the window go out now that it is open again.
        awaiting.discard(conversation.customer_id)
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
    if message.media and message.kind in _MEDIA_KINDS:
        outcome.followup = ("media", stored.pk, in_bot)
    elif in_bot:
        outcome.followup = ("bot", stored.pk, False)


def _dispatch_followups(followups: list[tuple[str, int, bool, str]]) -> None:
    """After commit: the bot and media downloads for the batch's new messages, each under its
    request's id (one task message per kind for a batch, see ``enqueue_*``)."""
    from bot.tasks import enqueue_inbound_messages
    from whatsapp.tasks.media import enqueue_media_downloads

    media = [(mid, notify, rid) for kind, mid, notify, rid in followups if kind == "media"]
    bot = [(mid, rid) for kind, mid, _n, rid in followups if kind == "bot"]
    # Each kind on its own: a refused publish (broker outage) must not cost the other one;
    # whatever was refused is enqueued again by the follow-up sweeper.
    for enqueue, items in ((enqueue_media_downloads, media), (enqueue_inbound_messages, bot)):
        try:
            enqueue(items)
        except Exception:
            logger.exception("webhook: could not enqueue follow-ups", extra={"count": len(items)})


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
        from whatsapp.tasks.media import download_media

        download_media.delay(message.pk, notify_bot=True)
        return "media"
    from bot.tasks import handle_inbound_message

    handle_inbound_message.delay(message.pk)
    return "bot"


def events_pending(*, older_than: timedelta, limit: int = 500) -> list[int]:
    """Ids of events stored but not processed for longer than ``older_than`` (the sweeper)."""
    cutoff: datetime = timezone.now() - older_than
    return list(
        WebhookEvent.objects.filter(status=WebhookEvent.Status.RECEIVED, received_at__lt=cutoff)
        .order_by("received_at")
        .values_list("pk", flat=True)[:limit]
    )
