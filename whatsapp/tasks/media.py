"""Celery task that downloads a customer's media (queue ``media``)."""

from __future__ import annotations

import logging

from celery import shared_task

from whatsapp import delivery, media
from whatsapp.client import GraphError

logger = logging.getLogger(__name__)

__all__ = ["download_media"]


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
