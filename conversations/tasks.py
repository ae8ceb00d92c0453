"""Celery tasks of the core: assignment, return-to-queue, presence sweep, live-event pruning.

Each task calls one service; the schedules are in ``settings.CELERY_BEAT_SCHEDULE``.
"""

from __future__ import annotations

from celery import shared_task

from conversations import services


@shared_task(name="conversations.autoassign_waiting")
def autoassign_waiting() -> int:
    return len(services.conversation_autoassign())


@shared_task(name="conversations.return_unanswered")
def return_unanswered() -> int:
    return len(services.conversation_return_unanswered())


@shared_task(name="conversations.sweep_presence")
def sweep_presence() -> int:
    return services.presence_sweep()


@shared_task(name="conversations.prune_live_events")
def prune_live_events() -> int:
    return services.live_events_prune()
