"""Celery task: keep the template table in step with Meta (beat, hourly by default)."""

from __future__ import annotations

import logging

from celery import shared_task

from whatsapp.client import GraphError
from whatsapp.templates import TemplateSyncError, templates_sync

logger = logging.getLogger(__name__)

__all__ = ["sync_templates"]


@shared_task(name="whatsapp.sync_templates")
def sync_templates() -> dict[str, int]:
    """Sync now; a Graph failure is logged and left to the next run (the table stays as it was)."""
    try:
        return templates_sync().as_dict()
    except TemplateSyncError:
        logger.info("templates: no business account configured, nothing to sync")
        return {}
    except GraphError as exc:
        logger.warning(
            "templates: sync failed", extra={"graph_code": exc.code, "http_status": exc.http_status}
        )
        return {}
