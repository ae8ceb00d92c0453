"""The outbox hook: how the core asks the channel app to deliver a message it stored.

``conversations`` may not import ``whatsapp`` (see ARCHITECTURE.md), so the channel registers a
dispatcher here from its ``AppConfig.ready()``. Services call ``dispatch_on_commit``; a sweeper
in the channel app re-dispatches anything left pending, so a lost dispatch never loses a reply.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db import transaction

from ispsupport import requestid

logger = logging.getLogger(__name__)

Dispatcher = Callable[[int], None]
_dispatcher: Dispatcher | None = None


def register_dispatcher(dispatcher: Dispatcher | None) -> Dispatcher | None:
    """Install ``dispatcher``; return the one it replaces (so a test can put it back)."""
    global _dispatcher
    previous, _dispatcher = _dispatcher, dispatcher
    return previous


def dispatch_on_commit(message_id: int) -> None:
    """After the surrounding transaction commits, hand the message id to the dispatcher."""

    def _dispatch() -> None:
        if _dispatcher is None:
            logger.warning("outbox: no dispatcher registered", extra={"message_id": message_id})
            return
        try:
            _dispatcher(message_id)
        except Exception:
            # The message stays pending; the sweeper will pick it up again.
            logger.exception("outbox: dispatch failed", extra={"message_id": message_id})

    # Under the request id of the reply's origin, even when the commit happens elsewhere.
    transaction.on_commit(requestid.bind(_dispatch))
