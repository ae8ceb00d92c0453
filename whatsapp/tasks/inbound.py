"""Celery tasks of the inbound path: process stored webhook events, sweep forgotten ones."""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task
from django.db import DatabaseError

from whatsapp import inbound

logger = logging.getLogger(__name__)

__all__ = ["process_pending_webhook_events", "process_webhook_event", "sweep_webhook_events"]


@shared_task(
    name="whatsapp.process_webhook_event",
    acks_late=True,
    autoretry_for=(DatabaseError,),
    retry_backoff=True,
    retry_backoff_max=60,
    retry_jitter=True,
    max_retries=8,
)
def process_webhook_event(event_id: int) -> None:
    inbound.event_process(event_id=event_id)


@shared_task(
    name="whatsapp.process_pending_webhook_events",
    acks_late=True,
    autoretry_for=(DatabaseError,),
    retry_backoff=True,
    retry_backoff_max=60,
    retry_jitter=True,
    max_retries=8,
)
def process_pending_webhook_events() -> int:
    """Drain every stored, unprocessed event in batches (started by the webhook's kick)."""
    return inbound.events_process_pending()


@shared_task(name="whatsapp.sweep_webhook_events")
def sweep_webhook_events(older_than_seconds: int = 120) -> int:
    """Re-dispatch events stored but never processed (a lost task, a broker outage)."""
    ids = inbound.events_pending(older_than=timedelta(seconds=older_than_seconds))
    for event_id in ids:
        process_webhook_event.delay(event_id)
    if ids:
        logger.warning("webhook sweeper re-dispatched events", extra={"count": len(ids)})
    return len(ids)
