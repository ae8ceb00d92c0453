"""Downloading customers' media from Meta into our storage (two-step Graph flow).

``message_media_download(message_id=…)``: ``GET /{media-id}`` (short-lived URL, MIME type,
sha256, size) → ``GET url`` with the bearer token, streamed and bounded → the digest is checked
against every sha256 Meta announced (the webhook's base64 one and the media endpoint's hex one)
and the size against the announced size → saved through Django's default storage under a
random name (never the customer's file name) → ``Message.media_file`` set by one conditional
UPDATE of the media fields, so two workers never both attach a file. Idempotent: a message
that already has its file is left alone. A rejected download stores nothing.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import mimetypes
import re
import tempfile
import uuid
from dataclasses import dataclass
from typing import IO

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage

from conversations.models import Message
from ispsupport.metrics import counts_result
from whatsapp import metrics
from whatsapp.client import Download, GraphClient, GraphError, MediaTooLarge, MediaUrl, get_client

logger = logging.getLogger(__name__)

_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
_EXTRA_EXTENSIONS = {"audio/ogg": ".ogg", "image/webp": ".webp", "audio/mpeg": ".mp3"}


@dataclass(frozen=True, slots=True)
class MediaOutcome:
    result: str  # stored | already | no_media | rejected
    reason: str = ""
    name: str = ""


def sha256_matches(announced: str, hex_digest: str) -> bool:
    """Meta announces sha256 as hex (media endpoint) or base64 (webhooks); accept either form."""
    value = announced.strip()
    if _HEX64.fullmatch(value):
        return hmac.compare_digest(value.lower(), hex_digest)
    for decode in (base64.b64decode, base64.urlsafe_b64decode):
        try:
            raw = decode(value + "=" * (-len(value) % 4))
        except (binascii.Error, ValueError):
            continue
        if len(raw) == 32:
            return hmac.compare_digest(raw.hex(), hex_digest)
    return False


def _extension(mime_type: str) -> str:
    base = mime_type.split(";", 1)[0].strip().lower()
    return _EXTRA_EXTENSIONS.get(base) or mimetypes.guess_extension(base) or ".bin"


@counts_result(metrics.MEDIA_DOWNLOADS)
def message_media_download(*, message_id: int, client: GraphClient | None = None) -> MediaOutcome:
    """Fetch and store the media of an inbound message; raises ``GraphError`` on Graph errors.

    Transient Graph errors propagate so the task can retry; verification failures return
    ``rejected`` (retrying would fetch the same bytes).
    """
    message = Message.objects.select_related("conversation").filter(pk=message_id).first()
    if message is None or not message.media_id:
        return MediaOutcome("no_media")
    if message.media_file:
        return MediaOutcome("already", name=message.media_file.name)
    client = client or get_client()
    max_bytes = int(settings.WHATSAPP_MEDIA_MAX_BYTES)
    with tempfile.SpooledTemporaryFile(max_size=1024 * 1024) as tmp:
        fetched = _fetch(client, message, into=tmp, max_bytes=max_bytes)
        if isinstance(fetched, MediaOutcome):
            return fetched
        info, download, announced_size = fetched
        mime_type = info.mime_type or message.media_mime_type or "application/octet-stream"
        if announced_size is not None and download.size != announced_size:
            return _reject(message_id, "size differs from the announced size")
        announced = [h for h in (message.media_sha256, info.sha256) if h]
        if any(not sha256_matches(h, download.sha256_hex) for h in announced):
            return _reject(message_id, "sha256 mismatch")
        tmp.seek(0)
        field = Message._meta.get_field("media_file")
        name = default_storage.save(
            field.generate_filename(message, uuid.uuid4().hex + _extension(mime_type)), File(tmp)
        )
    updated = Message.objects.filter(pk=message.pk, media_file="").update(
        media_file=name,
        media_mime_type=mime_type[:100],
        media_size=download.size,
        media_sha256=message.media_sha256 or info.sha256[:100],
    )
    if not updated:  # a concurrent worker attached its copy first
        default_storage.delete(name)
        return MediaOutcome("already")
    logger.info("media: stored", extra={"message_id": message_id, "size": download.size})
    return MediaOutcome("stored", name=name)


def _fetch(
    client: GraphClient, message: Message, *, into: IO[bytes], max_bytes: int
) -> tuple[MediaUrl, Download, int | None] | MediaOutcome:
    """Both Graph steps into ``into``; a download URL that answers 404 is fetched anew once.

    Meta's download URLs live 5 minutes and a 404 means "ask for a new URL" (a queued or
    retried task easily outlives one). A second 404 propagates (a token problem, or media past
    its 7 days); so does every other Graph error.
    """
    try:
        return _fetch_once(client, message, into=into, max_bytes=max_bytes)
    except GraphError as exc:
        if exc.code is not None or exc.http_status != 404:
            raise
    logger.info("media: download URL expired, asking for a new one")
    into.seek(0)
    into.truncate()
    return _fetch_once(client, message, into=into, max_bytes=max_bytes)


def _fetch_once(
    client: GraphClient, message: Message, *, into: IO[bytes], max_bytes: int
) -> tuple[MediaUrl, Download, int | None] | MediaOutcome:
    info = client.media_info(
        message.media_id, phone_number_id=message.conversation.business_number_id
    )
    announced_size = info.file_size if info.file_size is not None else message.media_size
    if announced_size is not None and announced_size > max_bytes:
        return _reject(message.pk, "announced size over the limit")
    try:
        download = client.media_download(
            info.url, into=into, max_bytes=min(max_bytes, announced_size or max_bytes)
        )
    except MediaTooLarge:
        return _reject(message.pk, "more bytes than announced")
    return info, download, announced_size


def _reject(message_id: int, reason: str) -> MediaOutcome:
    logger.warning("media: download rejected", extra={"message_id": message_id, "reason": reason})
    return MediaOutcome("rejected", reason=reason)
