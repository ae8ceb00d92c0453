"""Delivering the outbox to Meta: body building, rate limits, error handling by code.

The entry point is ``message_deliver(message_id=…)``, called by the Celery task
``whatsapp.deliver_outbound_message``; it returns an ``Outcome`` telling the task whether to
retry and when (tasks own retries and backoff; the rules live here).

Guarantees:

* No double send: a message is sent only after ``message_claim_for_delivery`` won the lease, so
  a retried task and the sweeper never both call Meta for one message.
* Never dropped: a refusal by our own limiter, a transient Graph error or Meta's pair limit
  releases the claim with the moment it may be retried; the task is rescheduled for then and
  the sweeper finds it again if that task is lost.
* Meta's codes decide (``whatsapp.client.classify``): transient → retry with exponential backoff
  and jitter up to ``WHATSAPP_DELIVERY_MAX_ATTEMPTS``; 131056 → that customer is held for 4^X s;
  131047 → failed and the conversation must use a template; 190 → failed, critical log, and
  ``/readyz`` reports ``whatsapp_token``; anything else → failed with Meta's code and title.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError, connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from conversations import services as conv_services
from conversations.models import Conversation, Message
from conversations.services import ALLOWED_ATTACHMENTS
from ispsupport import ratelimit
from ispsupport.metrics import counts_result
from whatsapp import metrics
from whatsapp.client import ErrorKind, GraphClient, GraphError, get_client
from whatsapp.models import EarlyStatus

logger = logging.getLogger(__name__)

TOKEN_FLAG_KEY = "whatsapp:token-rejected"  # noqa: S105 - a cache key, not a secret
TEXT_MAX = 4096
CAPTION_MAX = 1024
MEDIA_WITH_CAPTION = frozenset({"image", "video", "document"})
_STATUS_ORDER = {"sent": 1, "delivered": 2, "read": 3, "played": 4, "failed": 5}


class InvalidBody(Exception):
    """The message cannot become a valid Graph request; ``reason`` is shown to staff."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one delivery attempt; ``retry_in`` is set when the task must run again."""

    result: str  # sent | skipped | retry | failed
    retry_in: float | None = None
    wamid: str = ""
    error_code: int | None = None


# --- Body building ------------------------------------------------------------------------------


def sending_number(conversation: Conversation) -> str:
    """Replies leave from the number the customer wrote to, else the first configured one."""
    return conversation.business_number_id or settings.WHATSAPP_PHONE_NUMBER_IDS[0]


def _recipient(message: Message) -> dict[str, str]:
    return recipient_of(message.conversation.customer)


def recipient_of(customer: Any) -> dict[str, str]:
    """The ``to`` (or ``recipient``, for a BSUID-only customer) of a send body."""
    if customer.wa_id:
        # Meta wants "+" and the country code; without it Meta prepends *our* country code.
        return {"to": "+" + customer.wa_id.lstrip("+")}
    if customer.bsuid:
        return {"recipient": customer.bsuid}
    if customer.phone_e164:
        return {"to": "+" + customer.phone_e164.lstrip("+")}
    raise InvalidBody(_("O cliente não tem número nem identificador do WhatsApp."))


def build_send_body(message: Message) -> dict[str, Any]:
    """The Graph ``/messages`` body for an outbound Message (conventions in COMMON.md)."""
    body: dict[str, Any] = {"messaging_product": "whatsapp", "recipient_type": "individual"}
    body.update(_recipient(message))
    kind = message.type
    payload = message.payload or {}
    body["type"] = kind
    if kind == Message.Type.TEXT:
        text = message.text or ""
        if not text.strip():
            raise InvalidBody(_("A mensagem está vazia."))
        if len(text) > TEXT_MAX:
            raise InvalidBody(_("O texto passa de 4.096 caracteres."))
        body["text"] = {"preview_url": "http://" in text or "https://" in text, "body": text}
    elif kind == Message.Type.INTERACTIVE:
        interactive = payload.get("interactive")
        if not isinstance(interactive, dict):
            raise InvalidBody(_("Mensagem interativa sem conteúdo."))
        _check_interactive(interactive)
        body["interactive"] = interactive
    elif kind == Message.Type.TEMPLATE:
        template = payload.get("template")
        if not isinstance(template, dict) or not template.get("name"):
            raise InvalidBody(_("Modelo sem nome."))
        body["template"] = template
    elif kind in Message.MEDIA_TYPES:
        media: dict[str, Any] = {}
        if message.media_id:
            media["id"] = message.media_id
        elif isinstance(payload.get("link"), str) and payload["link"].startswith("https://"):
            media["link"] = payload["link"]
        else:
            raise InvalidBody(_("Mídia sem id nem link https."))
        if message.text and kind in MEDIA_WITH_CAPTION:
            if len(message.text) > CAPTION_MAX:
                raise InvalidBody(_("A legenda passa de 1.024 caracteres."))
            media["caption"] = message.text
        if kind == Message.Type.DOCUMENT and message.media_filename:
            media["filename"] = message.media_filename
        body[kind] = media
    elif isinstance(payload.get(kind), dict | list):
        body[kind] = payload[kind]  # location, contacts, reaction, sticker…: Graph's own object
    else:
        raise InvalidBody(_("Tipo de mensagem que não pode ser enviado."))
    if message.reply_to_id and message.context_wamid:
        body["context"] = {"message_id": message.context_wamid}
    elif message.reply_to_id and message.reply_to and message.reply_to.wamid:
        body["context"] = {"message_id": message.reply_to.wamid}
    return body


def _check_interactive(interactive: dict[str, Any]) -> None:
    if interactive.get("type") == "button":
        buttons = (interactive.get("action") or {}).get("buttons") or []
        titles = [((b or {}).get("reply") or {}).get("title", "") for b in buttons]
        if not 1 <= len(buttons) <= 3:
            raise InvalidBody(_("Use de 1 a 3 botões."))
        if any(not t or len(t) > 20 for t in titles) or len(set(titles)) != len(titles):
            raise InvalidBody(_("Cada botão precisa de um título único de até 20 caracteres."))
    body_text = (interactive.get("body") or {}).get("text", "")
    if len(body_text) > CAPTION_MAX:
        raise InvalidBody(_("O texto da mensagem interativa passa de 1.024 caracteres."))


# --- Media upload -------------------------------------------------------------------------------

_MB = 1024 * 1024
# Message type → {MIME type: max bytes}, from the one table of what Meta accepts.
MEDIA_LIMITS: dict[str, dict[str, int]] = {}
for _mime, (_kind, _max_bytes) in ALLOWED_ATTACHMENTS.items():
    MEDIA_LIMITS.setdefault(_kind, {})[_mime] = _max_bytes
STATIC_STICKER_MAX = 100 * 1024


@dataclass(frozen=True, slots=True)
class Attachment:
    data: bytes
    mime_type: str
    filename: str


def needs_upload(message: Message) -> bool:
    """An agent's attachment stored here but not yet at Meta (no id, no link)."""
    return (
        message.type in Message.MEDIA_TYPES
        and not message.media_id
        and bool(message.media_file)
        and not (message.payload or {}).get("link")
    )


def _webp_is_animated(head: bytes) -> bool:
    # RIFF....WEBPVP8X + flags: bit 1 of the first flags byte marks an animation.
    return head[:4] == b"RIFF" and head[8:16] == b"WEBPVP8X" and bool(head[20] & 0x02)


def read_attachment(message: Message) -> Attachment:
    """The stored file, if Meta would accept it for this message type; else ``InvalidBody``."""
    mime = (message.media_mime_type or "").split(";")[0].strip().lower()
    limits = MEDIA_LIMITS.get(message.type, {})
    if mime not in limits:
        raise InvalidBody(_("Tipo de arquivo não aceito pelo WhatsApp para este tipo de mídia."))
    max_bytes = limits[mime]
    try:
        size = message.media_file.size
        if size > max_bytes:
            raise InvalidBody(_too_large(max_bytes))
        with message.media_file.open("rb") as handle:
            data = handle.read(max_bytes + 1)
    except (OSError, ValueError) as exc:
        raise InvalidBody(_("O arquivo do anexo não foi encontrado.")) from exc
    if len(data) > max_bytes:
        raise InvalidBody(_too_large(max_bytes))
    static_sticker = message.type == Message.Type.STICKER and not _webp_is_animated(data[:32])
    if static_sticker and len(data) > STATIC_STICKER_MAX:
        raise InvalidBody(_too_large(STATIC_STICKER_MAX))
    filename = message.media_filename or message.media_file.name.rsplit("/", 1)[-1]
    return Attachment(data=data, mime_type=mime, filename=filename)


def _too_large(max_bytes: int) -> str:
    if max_bytes >= _MB:
        limit = _("%(n)d MB") % {"n": max_bytes // _MB}
    else:
        limit = _("%(n)d KB") % {"n": max_bytes // 1024}
    return _("Arquivo grande demais para o WhatsApp (máximo %(limit)s).") % {"limit": limit}


# --- Delivery -----------------------------------------------------------------------------------


def _pair_key(number: str, conversation: Conversation) -> str:
    return f"wa:pair:{number}:{conversation.customer_id}"


def _rules(number: str, conversation: Conversation) -> list[ratelimit.Rule]:
    rate = int(settings.WHATSAPP_SEND_RATE_PER_SECOND)
    return [
        # The number's tier; a tenth of a second of burst keeps the flow smooth.
        ratelimit.Rule(f"wa:num:{number}", rate, 1.0, burst=max(1, rate // 10)),
        # Meta's pair rate: 1 message per 6 s to one customer, beyond a small burst.
        ratelimit.Rule(
            _pair_key(number, conversation),
            1,
            float(settings.WHATSAPP_PAIR_INTERVAL_SECONDS),
            burst=int(settings.WHATSAPP_PAIR_BURST),
        ),
    ]


def backoff_seconds(attempt: int) -> float:
    """Exponential backoff with full jitter: base·2^(attempt-1), capped, times U(0.5, 1]."""
    base = float(settings.WHATSAPP_RETRY_BASE_SECONDS)
    ceiling = min(300.0, base * (2 ** max(0, attempt - 1)))
    return ceiling * (0.5 + random.random() / 2)


@counts_result(metrics.DELIVERIES)
def message_deliver(
    *, message_id: int, client: GraphClient | None = None, now: datetime | None = None
) -> Outcome:
    """Try to deliver one outbound message now; see the module docstring for the contract."""
    now = now or timezone.now()
    message = (
        Message.objects.select_related("conversation", "conversation__customer")
        .filter(pk=message_id, direction=Message.Direction.OUTBOUND)
        .first()
    )
    if message is None or message.status != Message.Status.PENDING:
        return Outcome("skipped")
    if message.delivery_claimed_until and message.delivery_claimed_until > now:
        return Outcome("skipped")  # another worker holds it, or it is scheduled for later
    number = sending_number(message.conversation)

    held = ratelimit.held_for(_pair_key(number, message.conversation))
    if held > 0:
        metrics.held_back("pair_hold")
        return _defer(message, held, now)
    allowed, wait = ratelimit.allow_all(_rules(number, message.conversation))
    if not allowed:
        metrics.held_back("local")
        return _defer(message, wait, now)

    message = conv_services.message_claim_for_delivery(
        message_id=message_id, lease_seconds=int(settings.WHATSAPP_CLAIM_LEASE_SECONDS), now=now
    )
    if message is None:
        return Outcome("skipped")
    client = client or get_client()
    try:
        if needs_upload(message):
            upload = read_attachment(message)  # checked against Meta's limits first
            try:
                media_id = client.upload_media(
                    number, data=upload.data, mime_type=upload.mime_type, filename=upload.filename
                )
            except GraphError as exc:
                return _handle_error(message, exc, number, now)
            conv_services.message_store_uploaded_media_id(message=message, media_id=media_id)
            logger.info("outbound: media uploaded", extra={"message_id": message_id})
        body = build_send_body(message)
    except InvalidBody as exc:
        conv_services.message_mark_failed(message=message, error_code=None, error_title=exc.reason)
        logger.warning("outbound: invalid body", extra={"message_id": message_id})
        return Outcome("failed")

    try:
        wamid = client.send(number, body)
    except GraphError as exc:
        return _handle_error(message, exc, number, now)

    _record_sent(message, wamid, claimed_at=now)
    metrics.accepted_by_meta(queued_at=message.created_at)
    ratelimit.reset_strikes(_pair_key(number, message.conversation))
    cache.delete(TOKEN_FLAG_KEY)
    logger.info("outbound: sent", extra={"message_id": message_id, "wamid": wamid})
    return Outcome("sent", wamid=wamid)


# Retries of the wamid's write stop this long before the claim expires: past it, the sweeper
# may hand the message to another worker, which would send it again anyway.
_RECORD_MARGIN_SECONDS = 5.0


def _record_sent(message: Message, wamid: str, *, claimed_at: datetime) -> None:
    """Store Meta's acceptance (the wamid, and any statuses that outran it) in one commit.

    Meta has the message now: if the database refuses the write (restarting, failing over), the
    reply would be pending again once the claim expires and be sent a second time. So the write
    is retried, on a fresh connection each time, while the claim still holds; only a database
    down for longer than that leaves the reply to be sent again (README "Faults").
    """
    lease = float(settings.WHATSAPP_CLAIM_LEASE_SECONDS)
    deadline = claimed_at + timedelta(seconds=lease - _RECORD_MARGIN_SECONDS)
    delay = 0.5
    while True:
        try:
            with transaction.atomic():
                conv_services.message_mark_sent(message=message, wamid=wamid)
                early_statuses_apply(wamid=wamid)
            return
        except DatabaseError:
            if timezone.now() + timedelta(seconds=delay) > deadline:
                logger.error(
                    "outbound: accepted by Meta but not recorded; it will be sent again",
                    extra={"message_id": message.pk, "wamid": wamid},
                )
                raise
            logger.warning(
                "outbound: accepted by Meta, recording it failed; retrying",
                extra={"message_id": message.pk, "wamid": wamid, "retry_in_s": delay},
            )
        if not connection.in_atomic_block:
            connection.close_if_unusable_or_obsolete()  # a broken one goes back to the pool
        time.sleep(delay)
        delay = min(delay * 2, 5.0)


def _defer(message: Message, seconds: float, now: datetime) -> Outcome:
    seconds = max(seconds, 0.0)
    conv_services.message_release_claim(message=message, retry_at=now + timedelta(seconds=seconds))
    return Outcome("retry", retry_in=seconds)


def _handle_error(message: Message, exc: GraphError, number: str, now: datetime) -> Outcome:
    metrics.graph_refusal(exc.code)
    log = {
        "message_id": message.pk,
        "graph_code": exc.code,
        "http_status": exc.http_status,
        "fbtrace_id": exc.fbtrace_id,
        "attempt": message.delivery_attempts,
    }
    if exc.kind == ErrorKind.RETRYABLE:
        if message.delivery_attempts >= int(settings.WHATSAPP_DELIVERY_MAX_ATTEMPTS):
            logger.error("outbound: giving up after retries", extra=log)
            return _fail(message, exc)
        logger.warning("outbound: transient error, will retry", extra=log)
        return _defer(message, backoff_seconds(message.delivery_attempts), now)
    if exc.kind == ErrorKind.PAIR_LIMIT:
        key = _pair_key(number, message.conversation)
        strikes = ratelimit.strike(key, ttl_s=3600)
        if strikes > 6:
            logger.error("outbound: pair limit persists, giving up", extra=log)
            return _fail(message, exc)
        wait = float(4 ** (strikes - 1))  # Meta: 4^X seconds, X = 0, 1, 2…
        ratelimit.hold(key, wait)
        logger.warning("outbound: pair rate limit, backing off this customer", extra=log)
        return _defer(message, wait, now)
    if exc.kind == ErrorKind.WINDOW_CLOSED:
        logger.warning("outbound: 24-hour window closed", extra=log)
        outcome = _fail(message, exc)
        conv_services.conversation_require_template(conversation=message.conversation)
        return outcome
    if exc.kind == ErrorKind.TOKEN:
        logger.critical("outbound: Meta rejected the access token (190); renew it", extra=log)
        cache.set(TOKEN_FLAG_KEY, now.isoformat(), timeout=token_alert_seconds())
        return _fail(message, exc)
    logger.warning("outbound: permanent error", extra=log)
    return _fail(message, exc)


def _fail(message: Message, exc: GraphError) -> Outcome:
    conv_services.message_mark_failed(
        message=message,
        error_code=exc.code,
        error_title=exc.title or _("Falha ao enviar"),
        error_details=exc.details,
    )
    return Outcome("failed", error_code=exc.code)


def token_alert_seconds() -> int:
    return int(getattr(settings, "WHATSAPP_TOKEN_ALERT_SECONDS", 3600))


def token_check() -> str | None:
    """Readiness: failing while Meta answered 190 recently (cleared by the next good send)."""
    since = cache.get(TOKEN_FLAG_KEY)
    if since:
        return f"Meta rejected the access token (code 190) at {since}"
    return None


# --- Early statuses -----------------------------------------------------------------------------


def early_statuses_apply(*, wamid: str) -> int:
    """Apply statuses that arrived before the wamid was stored, in order; delete them."""
    rows = sorted(
        EarlyStatus.objects.filter(wamid=wamid), key=lambda r: _STATUS_ORDER.get(r.status, 0)
    )
    for row in rows:
        conv_services.message_update_delivery(
            wamid=row.wamid,
            status=row.status,
            timestamp=row.timestamp,
            error_code=row.error_code,
            error_title=row.error_title,
            error_details=row.error_details,
        )
    if rows:
        EarlyStatus.objects.filter(pk__in=[r.pk for r in rows]).delete()
    return len(rows)


def early_statuses_sweep(*, now: datetime | None = None, max_age_hours: int = 24) -> int:
    """Apply early statuses whose message is now known (a race with mark-sent); purge old ones."""
    now = now or timezone.now()
    known = set(
        Message.objects.filter(
            wamid__in=EarlyStatus.objects.values("wamid"), direction=Message.Direction.OUTBOUND
        ).values_list("wamid", flat=True)[:1000]
    )
    applied = sum(early_statuses_apply(wamid=w) for w in known)
    EarlyStatus.objects.filter(created_at__lt=now - timedelta(hours=max_age_hours)).delete()
    return applied


# --- Sweeper ------------------------------------------------------------------------------------


def outbox_stale_ids(*, now: datetime | None = None, limit: int = 500) -> list[int]:
    """Pending outbound messages older than the threshold whose claim expired (or never was)."""
    now = now or timezone.now()
    threshold = now - timedelta(seconds=int(settings.WHATSAPP_OUTBOX_SWEEP_AFTER_SECONDS))
    return list(
        Message.objects.filter(
            status=Message.Status.PENDING,
            direction=Message.Direction.OUTBOUND,
            created_at__lt=threshold,
        )
        .filter(Q(delivery_claimed_until__isnull=True) | Q(delivery_claimed_until__lt=now))
        .order_by("created_at")
        .values_list("pk", flat=True)[:limit]
    )


# --- Mark as read -------------------------------------------------------------------------------


def conversation_mark_read(*, conversation_id: int, client: GraphClient | None = None) -> bool:
    """Tell Meta the customer's latest message was read (blue ticks); once per message."""
    conversation = Conversation.objects.filter(pk=conversation_id).first()
    if conversation is None:
        return False
    latest = (
        Message.objects.filter(
            conversation_id=conversation_id,
            direction=Message.Direction.INBOUND,
            wamid__isnull=False,
        )
        .order_by("-created_at", "-pk")
        .values_list("wamid", flat=True)
        .first()
    )
    if not latest:
        return False
    key = f"whatsapp:read:{conversation_id}"
    if cache.get(key) == latest:
        return False
    # Meta accepts read receipts for 30 days; older ones are pointless.
    (client or get_client()).mark_read(sending_number(conversation), latest)
    cache.set(key, latest, timeout=30 * 24 * 3600)
    return True
