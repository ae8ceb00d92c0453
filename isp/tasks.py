"""Celery entry points of isp: outage detection, the outage all-clear, campaign sends and the
customer-base import uploaded in the admin.

Tasks take ids and call one service. The bulk senders (``isp.bulk``) work in batches and say
when to run again; a worker re-enqueues itself for that moment. Without a broker (the embedded
default, tests) the task runs inline: further batches with no wait run at once, a limiter wait
runs on a timer thread when ``WHATSAPP_EAGER_DEFERRED_RETRIES`` is on, else the beat task
``isp.bulk_sends_tick`` (every 30 s) picks the work up again, as it does a lost task.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from celery import shared_task
from django.conf import settings
from django.core.cache import cache
from django.db import connections

from isp import bulk, campaigns, imports, outages

logger = logging.getLogger(__name__)

__all__ = [
    "bulk_sends_tick",
    "campaign_run",
    "contract_import_run",
    "detect_outage",
    "outage_all_clear",
]

# Batches one eager run may chain before it leaves the rest to the tick.
_EAGER_MAX_BATCHES = 1000
_HEARTBEAT_SECONDS = 90


def _heartbeat(outage_id: int) -> str:
    return f"isp:all-clear-running:{outage_id}"


@shared_task(name="isp.detect_outage", acks_late=True, ignore_result=True)
def detect_outage(report_ids: list[int]) -> int:
    """Count recent reports of no connection per region; alert supervisors at the threshold."""
    return len(outages.outage_detect(report_ids=report_ids))


@shared_task(name="isp.outage_all_clear", bind=True, acks_late=True, ignore_result=True)
def outage_all_clear(self, outage_id: int) -> int:
    """Tell every customer attached to a resolved outage that it is over (once each)."""
    # A heartbeat, so the tick does not start a second chain while this one is working.
    cache.set(_heartbeat(outage_id), 1, timeout=_HEARTBEAT_SECONDS)
    return _run_batches(
        self,
        lambda: outages.outage_all_clear_batch(outage_id=outage_id),
        outage_all_clear,
        outage_id,
    )


@shared_task(name="isp.campaign_run", bind=True, acks_late=True, ignore_result=True)
def campaign_run(self, campaign_id: int) -> int:
    """Start a due campaign and queue its messages, batch after batch, at the bulk pace."""
    return _run_batches(
        self,
        lambda: campaigns.campaign_run_batch(campaign_id=campaign_id),
        campaign_run,
        campaign_id,
    )


@shared_task(name="isp.contract_import_run", acks_late=True, ignore_result=True)
def contract_import_run(import_id: int) -> str:
    """Import an uploaded customer-base CSV (admin), then delete the file."""
    run = imports.contract_import_run(import_id=import_id)
    return run.status if run else "missing"


@shared_task(name="isp.bulk_sends_tick", ignore_result=True)
def bulk_sends_tick() -> int:
    """Beat: start campaigns whose time came; resume bulk sends whose task was lost."""
    started = 0
    for campaign_id in campaigns.campaigns_due():
        campaign_run.delay(campaign_id)
        started += 1
    for outage_id in outages.outages_needing_all_clear():
        if cache.get(_heartbeat(outage_id)):
            continue
        outage_all_clear.delay(outage_id)
        started += 1
    return started


def _run_batches(task, batch: Callable[[], bulk.BulkProgress], again, object_id: int) -> int:
    sent = 0
    for _ in range(_EAGER_MAX_BATCHES if task.request.is_eager else 1):
        progress = batch()
        sent += progress.sent
        if progress.done:
            return sent
        if progress.retry_in is None and task.request.is_eager:
            continue  # another batch, at once
        if not task.request.is_eager:
            again.apply_async(args=[object_id], countdown=max(0.0, progress.retry_in or 0.0))
        elif settings.WHATSAPP_EAGER_DEFERRED_RETRIES:
            _run_later(progress.retry_in or 0.0, again, object_id)
        return sent
    return sent


def _run_later(countdown: float, task, object_id: int) -> None:
    def run() -> None:
        try:
            task.apply(args=[object_id])
        except Exception:
            logger.exception("isp: deferred eager bulk send failed", extra={"object_id": object_id})
        finally:
            connections.close_all()

    timer = threading.Timer(countdown, run)
    timer.daemon = True
    timer.start()
