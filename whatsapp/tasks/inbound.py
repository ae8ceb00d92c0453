"""Celery tasks of the inbound path: process stored webhook events, sweep forgotten ones."""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError

from whatsapp import inbound

logger = logging.getLogger(__name__)

__all__ = [
    "process_pending_webhook_events",
    "process_webhook_event",
    "sweep_inbound_followups",
    "sweep_webhook_events",
]


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
def sweep_webhook_events(older_than_seconds: int | None = None) -> int:
    """Re-dispatch events stored but never processed (a lost task, a broker outage).

    Taken over ``WHATSAPP_WEBHOOK_SWEEP_AFTER_SECONDS`` after they were stored (by default).
    """
    if older_than_seconds is None:
        older_than_seconds = settings.WHATSAPP_WEBHOOK_SWEEP_AFTER_SECONDS
    ids = inbound.events_pending(older_than=timedelta(seconds=older_than_seconds))
    for event_id in ids:
        process_webhook_event.delay(event_id)
    if ids:
        logger.warning("webhook sweeper re-dispatched events", extra={"count": len(ids)})
    return len(ids)


@shared_task(name="whatsapp.sweep_inbound_followups")
def sweep_inbound_followups() -> int:
    """Enqueue the bot turn (or media download) of customers' messages that never got one.

    Taken over ``WHATSAPP_FOLLOWUP_SWEEP_AFTER_SECONDS`` after the customer wrote; the bot is
    idempotent, so a turn that was only slow is decided once all the same.
    """
    older_than = timedelta(seconds=settings.WHATSAPP_FOLLOWUP_SWEEP_AFTER_SECONDS)
    messages = inbound.messages_awaiting_followup(older_than=older_than)
    kinds = [
        inbound.followup_redispatch(message)
        for message in messages
        if _first_redispatch_in(message.pk, older_than)
    ]
    if kinds:
        logger.warning(
            "follow-up sweeper re-dispatched customers' messages",
            extra={"count": len(kinds), "media": kinds.count("media")},
        )
    return len(kinds)


def _first_redispatch_in(message_id: int, period: timedelta) -> bool:
    """At most one re-dispatch per message per period: a turn that is only queued behind a
    backlog must not be queued again at every sweep. Without the cache, re-dispatch anyway
    (the bot is idempotent)."""
    try:
        return cache.add(f"whatsapp:followup:{message_id}", "1", timeout=period.total_seconds())
    except Exception:
        logger.warning("follow-up sweeper: cache unavailable, re-dispatching anyway")
        return True
