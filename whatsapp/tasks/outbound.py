"""Celery tasks of outbound delivery: send one message, sweep the outbox, mark as read.

Tasks take ids and call one service of ``whatsapp.delivery``; the retry timing they apply is
the one the service computed (limiter wait, backoff with jitter, Meta's 4^X pair backoff).
"""

from __future__ import annotations

import logging
import threading

from celery import shared_task
from django.conf import settings
from django.db import connections

from whatsapp import delivery
from whatsapp.client import GraphError

logger = logging.getLogger(__name__)

__all__ = ["deliver_outbound_message", "mark_conversation_read", "sweep_outbox"]

# Scheduled retries run a little after the moment the service released the claim for, so the
# claim has surely expired when they run (clocks and brokers are not exact).
RETRY_MARGIN_SECONDS = 0.25
# In eager mode (embedded default, tests) a wait this short is retried inline.
_EAGER_INLINE_SECONDS = 0.05


@shared_task(name="whatsapp.deliver_outbound_message", bind=True, acks_late=True)
def deliver_outbound_message(self, message_id: int) -> str:
    """Deliver one outbound message (queue ``outbound``); idempotent and safe to run twice."""
    outcome = delivery.message_deliver(message_id=message_id)
    if not self.request.is_eager:
        if outcome.retry_in is not None:
            # Unbounded here on purpose: the service bounds attempts (failed after N) and
            # limiter waits always end.
            raise self.retry(countdown=outcome.retry_in + RETRY_MARGIN_SECONDS, max_retries=None)
        return outcome.result
    # Eager (no broker): never block the caller for long; short waits inline, longer ones on a
    # timer thread when allowed, else the sweeper picks the message up.
    for _ in range(int(settings.WHATSAPP_DELIVERY_MAX_ATTEMPTS) + 1):
        if outcome.retry_in is None or outcome.retry_in > _EAGER_INLINE_SECONDS:
            break
        outcome = delivery.message_deliver(message_id=message_id)
    if outcome.retry_in is not None and settings.WHATSAPP_EAGER_DEFERRED_RETRIES:
        _run_later(outcome.retry_in + RETRY_MARGIN_SECONDS, message_id)
    return outcome.result


def _run_later(countdown: float, message_id: int) -> None:
    def run() -> None:
        try:
            deliver_outbound_message.apply(args=[message_id])
        except Exception:
            logger.exception(
                "outbound: deferred eager delivery failed", extra={"message_id": message_id}
            )
        finally:
            connections.close_all()

    timer = threading.Timer(countdown, run)
    timer.daemon = True
    timer.start()


@shared_task(name="whatsapp.sweep_outbox")
def sweep_outbox() -> int:
    """Every minute (beat): re-dispatch messages left pending whose claim expired.

    Also applies early statuses whose message became known meanwhile and purges old ones.
    """
    ids = delivery.outbox_stale_ids()
    for message_id in ids:
        deliver_outbound_message.delay(message_id)
    delivery.early_statuses_sweep()
    if ids:
        logger.info("outbox: re-dispatched stale messages", extra={"count": len(ids)})
    return len(ids)


@shared_task(name="whatsapp.mark_conversation_read", bind=True, max_retries=3)
def mark_conversation_read(self, conversation_id: int) -> bool:
    """Blue ticks for the customer when an agent opens the conversation (queue ``outbound``)."""
    for attempt in range(self.request.retries, self.max_retries + 1):
        try:
            return delivery.conversation_mark_read(conversation_id=conversation_id)
        except GraphError as exc:
            if exc.retryable and attempt < self.max_retries:
                if self.request.is_eager:
                    continue  # no broker: retry inline, at once
                raise self.retry(countdown=delivery.backoff_seconds(attempt + 1)) from exc
            logger.warning(
                "mark-read: refused",
                extra={
                    "conversation_id": conversation_id,
                    "graph_code": exc.code,
                    "fbtrace_id": exc.fbtrace_id,
                },
            )
            return False
    return False
