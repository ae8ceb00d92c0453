"""Celery tasks of accounts (queue ``default``)."""

from __future__ import annotations

import logging

from celery import shared_task

from accounts import services

logger = logging.getLogger(__name__)


@shared_task(name="accounts.end_stale_sessions", acks_late=True, ignore_result=True)
def end_stale_sessions() -> dict[str, int]:
    """Beat, every minute: idle and over-age sessions end, and their WebSockets close."""
    counts = services.sessions_end_stale()
    if any(counts.values()):
        logger.info("sessions: stale sessions ended", extra=counts)
    return counts
