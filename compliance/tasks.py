"""Celery tasks for compliance: take ids, call one service (rules live in services)."""

from __future__ import annotations

import logging

from celery import shared_task

from compliance import services
from compliance.registry import DeliveryPostponed

logger = logging.getLogger(__name__)


@shared_task(name="compliance.build_export", bind=True, max_retries=3, default_retry_delay=60)
def build_export(self, export_id: int) -> None:
    services.export_build(export_id=export_id)


@shared_task(
    name="compliance.erase_subject",
    bind=True,
    autoretry_for=(DeliveryPostponed,),
    retry_backoff=30,
    retry_backoff_max=600,
    max_retries=12,
)
def erase_subject(self, request_id: int) -> dict:
    """Erase a subject; retried while the channel cannot deliver the answer for now (the data
    stays until the customer has been told; about 90 minutes of retries, then the request stays
    open for the DPO)."""
    return services.erasure_run(request_id=request_id).as_dict()


@shared_task(name="compliance.apply_retention")
def apply_retention() -> dict:
    """Nightly (CELERY_BEAT_SCHEDULE): purge what is past retention; returns the counts."""
    return services.retention_apply(dry_run=False)


@shared_task(name="compliance.check_request_deadlines")
def check_request_deadlines() -> dict:
    """Daily: flag data-subject requests overdue or near their 15-day deadline (logs ids)."""
    return services.dsr_deadline_alerts()
