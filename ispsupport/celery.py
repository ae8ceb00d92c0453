"""The Celery application. Queues: webhooks, ai, outbound, media, default."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ispsupport.settings")

app = Celery("ispsupport")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Request ids in task headers, task metrics, the worker's metrics port (ispsupport.celery_hooks).
from ispsupport import celery_hooks  # noqa: E402, F401
