"""Retention: the nightly purge of everything past its period, in small batches, honouring
legal holds. ``manage.py apply_retention`` (dry run unless ``--apply``) and the Celery beat task
``compliance.apply_retention`` both call ``retention_apply``."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from compliance import registry
from compliance.models import RetentionRun

logger = logging.getLogger(__name__)


def retention_cutoff(data_class: str, now: datetime) -> datetime:
    return now - timedelta(days=int(settings.COMPLIANCE_RETENTION_DAYS[data_class]))


def retention_apply(
    *, dry_run: bool = True, now: datetime | None = None, batch_size: int | None = None
) -> dict[str, int]:
    """Run every provider's purge; return counts per data class (what went, or would go).

    Each provider deletes in batches of ``batch_size`` rows per transaction, so no lock is held
    for long; rows of customers under an active legal hold are skipped. Real runs are recorded
    in ``RetentionRun`` (counts only).
    """
    now = now or timezone.now()
    batch_size = batch_size or settings.COMPLIANCE_RETENTION_BATCH_SIZE
    run = None if dry_run else RetentionRun.objects.create(started_at=now, dry_run=False)
    counts: dict[str, int] = {}
    try:
        for provider in registry.providers():
            for key, value in provider.purge(
                now=now, batch_size=batch_size, dry_run=dry_run
            ).items():
                counts[key] = counts.get(key, 0) + int(value)
    except Exception as exc:
        if run is not None:
            RetentionRun.objects.filter(pk=run.pk).update(
                counts=counts, error=type(exc).__name__, finished_at=timezone.now()
            )
        raise
    if run is not None:
        RetentionRun.objects.filter(pk=run.pk).update(counts=counts, finished_at=timezone.now())
    logger.info("retention %s", "dry-run" if dry_run else "applied", extra={"counts": counts})
    return counts


def batched_delete(qs: Any, *, batch_size: int, dry_run: bool, before_delete: Any = None) -> int:
    """Delete ``qs`` in primary-key batches (one short transaction each); count when dry-run.

    ``before_delete(pks)`` runs inside each batch's transaction (e.g. to queue file removal).
    """
    from django.db import transaction

    if dry_run:
        return qs.count()
    total = 0
    model = qs.model
    while True:
        with transaction.atomic():
            pks = list(qs.values_list("pk", flat=True)[:batch_size])
            if not pks:
                break
            if before_delete is not None:
                before_delete(pks)
            model._default_manager.filter(pk__in=pks).delete()
            total += len(pks)
        if len(pks) < batch_size:
            break
    return total
