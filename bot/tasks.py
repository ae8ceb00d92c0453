"""Celery entry points of the bot (queue ``ai`` through the ``bot.*`` route)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from celery import shared_task

from bot import selectors, services
from bot.analysis import ModelBusy
from ispsupport import requestid

logger = logging.getLogger(__name__)

# Retries for a transient model failure, each only if it still fits the time budget.
MAX_MODEL_RETRIES = 2
# Wait before retrying a 5xx/timeout that came without a server-requested delay.
_BACKOFF_S = (1.0, 2.0)


@shared_task(
    name="bot.handle_inbound_message",
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    # No soft limit: Celery delivers it as a signal that raises inside whatever the pool process
    # is doing. After a broker outage longer than the limit, the pool fired it for decisions
    # that had finished meanwhile, into idle processes reading their next job: the pipe broke
    # and the worker died (tests/fleet/test_faults.py, Redis stopped). The decision bounds its
    # own time (the latency budget, the model's and the ERP's timeouts); the hard limit stays
    # as the last resort (the pool process is killed, the task redelivered).
    time_limit=45,
    max_retries=MAX_MODEL_RETRIES,
    ignore_result=True,
)
def handle_inbound_message(self, message_id: int) -> str:
    """Decide the bot's answer to one inbound message. Idempotent: Celery may deliver twice.

    A transient Gemini failure is retried after the server's ``retryDelay`` (or a short
    backoff) only while that fits the decision's time budget; otherwise the message is decided
    without the model ("model unavailable": a person takes over).
    """
    try:
        return services.bot_handle_inbound(message_id=message_id).status
    except ModelBusy as exc:
        countdown = exc.retry_after_s
        if countdown is None:
            countdown = _BACKOFF_S[min(self.request.retries, len(_BACKOFF_S) - 1)]
        if self.request.retries < MAX_MODEL_RETRIES and _fits_budget(message_id, countdown):
            logger.info(
                "bot: model busy, retrying",
                extra={"message_id": message_id, "countdown_s": countdown, "kind": exc.kind},
            )
            raise self.retry(countdown=countdown, max_retries=MAX_MODEL_RETRIES) from exc
        return services.bot_handle_inbound(message_id=message_id, model_failed=True).status


@shared_task(name="bot.handle_inbound_messages", acks_late=True, ignore_result=True)
def handle_inbound_messages(items: list[list]) -> int:
    """Fan a batch out: one ``handle_inbound_message`` per ``[message id, request id]``, each
    published under its message's request id (so each keeps its own retries, time limit and
    log trail). The webhook drain publishes this once per batch instead of one task message
    per customer message; redelivered twice, each message is still decided once."""
    for message_id, request_id in items:
        with requestid.context(request_id):
            handle_inbound_message.delay(int(message_id))
    return len(items)


def enqueue_inbound_messages(items: Sequence[tuple[int, str]]) -> None:
    """Start the bot for each (message id, request id): one task message for a single one,
    one fan-out message (``handle_inbound_messages``) for more. Call after commit."""
    if len(items) == 1:
        ((message_id, request_id),) = items
        with requestid.context(request_id):
            handle_inbound_message.delay(message_id)
    elif items:
        handle_inbound_messages.delay([[message_id, rid] for message_id, rid in items])


def _fits_budget(message_id: int, countdown: float) -> bool:
    from conversations.models import Message

    message = Message.objects.filter(pk=message_id).only("created_at").first()
    if message is None:
        return False
    remaining = services.message_deadline(
        message=message, budget_s=selectors.latency_budget_seconds()
    )
    # The retried call needs at least a second of its own after the wait.
    return countdown + 1.0 <= remaining
