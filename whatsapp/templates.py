"""Approved message templates: kept in step with Meta, the only thing sendable outside the window.

Three ways a row changes:
- ``templates_sync`` (Celery beat, hourly; ``manage.py sync_whatsapp_templates``) lists the
  business account's templates (``GET /{waba-id}/message_templates``) and upserts them by
  (name, language); a template Meta no longer lists is marked disabled, never deleted, so the
  messages that used it still make sense.
- ``template_apply_status_update`` applies Meta's ``message_template_status_update`` webhook
  (approved, rejected, paused, disabled…) as soon as it arrives, between two syncs.
- An admin edits a row by hand (the demo, with no Meta account); such rows have no ``meta_id``
  and the sync leaves them alone.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from whatsapp.client import GraphClient, get_client
from whatsapp.models import MessageTemplate

logger = logging.getLogger(__name__)

_PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*\}\}")
_STATUSES = {choice for choice, _label in MessageTemplate.Status.choices}
_CATEGORIES = {choice for choice, _label in MessageTemplate.Category.choices}
# Meta's webhook events that are not statuses of ours (e.g. PENDING_DELETION) map here.
_EVENT_STATUS = {
    "APPROVED": MessageTemplate.Status.APPROVED,
    "REJECTED": MessageTemplate.Status.REJECTED,
    "PENDING": MessageTemplate.Status.PENDING,
    "PAUSED": MessageTemplate.Status.PAUSED,
    "DISABLED": MessageTemplate.Status.DISABLED,
    "PENDING_DELETION": MessageTemplate.Status.DISABLED,
    "DELETED": MessageTemplate.Status.DISABLED,
    "FLAGGED": MessageTemplate.Status.PAUSED,
    "REINSTATED": MessageTemplate.Status.APPROVED,
}


class TemplateSyncError(Exception):
    """The business account id is missing, or Meta's answer could not be used."""


@dataclass
class SyncReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    disabled: int = 0
    skipped: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def body_of(components: list[Any]) -> str:
    """The text of the BODY component (what the customer reads; placeholders kept)."""
    for component in components or []:
        if isinstance(component, dict) and str(component.get("type", "")).upper() == "BODY":
            text = component.get("text")
            return text if isinstance(text, str) else ""
    return ""


def parameter_count(body_text: str) -> int:
    return len(set(_PLACEHOLDER.findall(body_text)))


def _fields_from_meta(row: dict[str, Any]) -> dict[str, Any] | None:
    name, language = row.get("name"), row.get("language")
    if not isinstance(name, str) or not name or not isinstance(language, str) or not language:
        return None
    components = row.get("components") if isinstance(row.get("components"), list) else []
    body = body_of(components)
    status = str(row.get("status", "")).upper()
    category = str(row.get("category", "")).upper()
    return {
        "name": name[:512],
        "language": language[:15],
        "meta_id": str(row.get("id", ""))[:32],
        "status": status if status in _STATUSES else MessageTemplate.Status.PENDING,
        "category": category if category in _CATEGORIES else MessageTemplate.Category.UTILITY,
        "components": components,
        "body_text": body,
        "parameter_count": parameter_count(body),
        "status_reason": str(row.get("rejected_reason") or "")[:64].replace("NONE", ""),
    }


def templates_sync(*, client: GraphClient | None = None, waba_id: str = "") -> SyncReport:
    """Upsert every template Meta lists for the business account; one transaction.

    A GraphError propagates (the beat task logs it and the next run tries again); nothing is
    written unless the whole list was read.
    """
    waba_id = waba_id or settings.WHATSAPP_BUSINESS_ACCOUNT_ID
    if not waba_id:
        raise TemplateSyncError("WHATSAPP_BUSINESS_ACCOUNT_ID is not set")
    client = client or get_client()
    listed = [
        fields for row in client.list_templates(waba_id) if (fields := _fields_from_meta(row))
    ]
    report = SyncReport()
    now = timezone.now()
    seen: set[tuple[str, str]] = set()
    with transaction.atomic():
        existing = {
            (t.name, t.language): t for t in MessageTemplate.objects.select_for_update().all()
        }
        for fields in listed:
            key = (fields["name"], fields["language"])
            if key in seen:
                report.skipped += 1
                continue
            seen.add(key)
            row = existing.get(key)
            if row is None:
                MessageTemplate.objects.create(**fields, synced_at=now)
                report.created += 1
                continue
            changed = [f for f, value in fields.items() if getattr(row, f) != value]
            for f in changed:
                setattr(row, f, fields[f])
            row.synced_at = now
            row.save(update_fields=[*changed, "synced_at", "updated_at"])
            if changed:
                report.updated += 1
            else:
                report.unchanged += 1
        for key, row in existing.items():
            if key not in seen and row.meta_id and row.status != MessageTemplate.Status.DISABLED:
                row.status = MessageTemplate.Status.DISABLED
                row.status_reason = "not listed by Meta"
                row.save(update_fields=["status", "status_reason", "updated_at"])
                report.disabled += 1
    logger.info(
        "templates: synced", extra={f"templates_{k}": v for k, v in report.as_dict().items()}
    )
    return report


def template_apply_status_update(value: dict[str, Any]) -> bool:
    """Apply one ``message_template_status_update`` change value; True when a row changed.

    Matched by Meta's template id, else by (name, language). An event for a template we never
    synced is left for the next sync (which creates it with its full components).
    """
    event = str(value.get("event", "")).upper()
    status = _EVENT_STATUS.get(event)
    if status is None:
        logger.info("templates: unknown status event", extra={"event": event[:32]})
        return False
    meta_id = str(value.get("message_template_id", "") or "")
    name = str(value.get("message_template_name", "") or "")
    language = str(value.get("message_template_language", "") or "")
    rows = MessageTemplate.objects.none()
    if meta_id:
        rows = MessageTemplate.objects.filter(meta_id=meta_id)
    if not rows.exists() and name and language:
        rows = MessageTemplate.objects.filter(name=name, language=language)
    reason = str(value.get("reason") or value.get("other_info", {}).get("title", "") or "")
    reason = "" if reason.upper() == "NONE" else reason[:64]
    changed = rows.exclude(status=status, status_reason=reason).update(
        status=status, status_reason=reason, updated_at=timezone.now()
    )
    logger.info("templates: status update", extra={"event": event[:32], "rows": changed})
    return changed > 0


def approved_template(name: str, *, language: str = "pt_BR") -> MessageTemplate | None:
    """The approved template called ``name`` (the language asked for first, else any)."""
    rows = MessageTemplate.objects.filter(name=name, status=MessageTemplate.Status.APPROVED)
    return rows.filter(language=language).first() or rows.order_by("language").first()
