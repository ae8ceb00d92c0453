"""Celery task that downloads a customer's media (queue ``media``)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from celery import shared_task

from ispsupport import requestid
from whatsapp import delivery, media
from whatsapp.client import GraphError

logger = logging.getLogger(__name__)

__all__ = ["download_media", "download_media_many", "enqueue_media_downloads"]


@shared_task(name="whatsapp.download_media", bind=True, max_retries=4, acks_late=True)
def download_media(self, message_id: int, notify_bot: bool = False) -> str:
    """Download and store the media of a message; then, if asked, let the bot read it.

    The bot is told after success and after a final failure alike, so a customer who sent a
    photo never waits for an answer that depends on a download that will not happen.
    """
    result = "failed"
    # Eager mode (no broker) retries inline, at once; a worker reschedules with backoff.
    for attempt in range(self.request.retries, self.max_retries + 1):
        try:
            result = media.message_media_download(message_id=message_id).result
            break
        except GraphError as exc:
            if exc.retryable and attempt < self.max_retries:
                if self.request.is_eager:
                    continue
                raise self.retry(countdown=delivery.backoff_seconds(attempt + 1)) from exc
            logger.warning(
                "media: download failed",
                extra={
                    "message_id": message_id,
                    "graph_code": exc.code,
                    "fbtrace_id": exc.fbtrace_id,
                },
            )
            break
    if notify_bot:
        from bot.tasks import handle_inbound_message  # the bot app's task, imported lazily

        handle_inbound_message.delay(message_id)
    return result


@shared_task(name="whatsapp.download_media_many", acks_late=True, ignore_result=True)
def download_media_many(items: list[list]) -> int:
    """Fan a batch out: one ``download_media`` per ``[message id, notify bot, request id]``,
    each under its message's request id (see ``bot.handle_inbound_messages``)."""
    for message_id, notify_bot, request_id in items:
        with requestid.context(request_id):
            download_media.delay(int(message_id), notify_bot=bool(notify_bot))
    return len(items)


def enqueue_media_downloads(items: Sequence[tuple[int, bool, str]]) -> None:
    """Download the media of each (message id, notify bot, request id): one task message for
    a single one, one fan-out message for more. Call after commit."""
    if len(items) == 1:
        ((message_id, notify_bot, request_id),) = items
        with requestid.context(request_id):
            download_media.delay(message_id, notify_bot=notify_bot)
    elif items:
        download_media_many.delay([[m, notify, rid] for m, notify, rid in items])
