"""System checks of the observability settings (metrics, slow-query log)."""

from __future__ import annotations

import os
from typing import Any

from django.conf import settings
from django.core import checks


def check_metrics(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """``PROMETHEUS_MULTIPROC_DIR`` must be a writable directory; numbers must make sense."""
    errors: list[checks.CheckMessage] = []
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
    if directory and not (os.path.isdir(directory) and os.access(directory, os.W_OK)):
        errors.append(
            checks.Error(
                f"PROMETHEUS_MULTIPROC_DIR={directory!r} is not a writable directory",
                hint="Create it (empty) before the processes start; one per role.",
                id="ispsupport.E120",
            )
        )
    if int(getattr(settings, "DB_SLOW_QUERY_MS", 0)) < 0:
        errors.append(
            checks.Error("DB_SLOW_QUERY_MS must be 0 (off) or more", id="ispsupport.E121")
        )
    port = int(getattr(settings, "CELERY_METRICS_PORT", 0))
    if not 0 <= port <= 65535:
        errors.append(checks.Error("CELERY_METRICS_PORT must be a TCP port", id="ispsupport.E122"))
    return errors
