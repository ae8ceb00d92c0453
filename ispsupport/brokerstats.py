"""What waits in the Celery broker, read on scrape (a state collector of ``ispsupport.metrics``).

Kept apart from the metrics module, which only records: this one talks to Redis.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings
from prometheus_client.core import GaugeMetricFamily, Metric


def celery_queue_lengths() -> Iterable[Metric]:
    """Messages waiting in each Celery queue (Redis broker: one LLEN per queue)."""
    family = GaugeMetricFamily(
        "ispsupport_celery_queue_length",
        "Task messages waiting in the broker, by queue (Redis broker only; empty when eager).",
        labels=["queue"],
    )
    url = getattr(settings, "CELERY_BROKER_URL", "") or ""
    if (
        url.startswith(("redis://", "rediss://", "unix://"))
        and not settings.CELERY_TASK_ALWAYS_EAGER
    ):
        import redis

        queues = sorted(
            {r["queue"] for r in settings.CELERY_TASK_ROUTES.values()}
            | {settings.CELERY_TASK_DEFAULT_QUEUE}
        )
        client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
        try:
            with client.pipeline(transaction=False) as pipe:
                for queue in queues:
                    pipe.llen(queue)
                lengths = pipe.execute()
        finally:
            client.close()
        for queue, length in zip(queues, lengths, strict=True):
            family.add_metric([queue], int(length))
    yield family
