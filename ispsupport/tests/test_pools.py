"""Pool saturation on /metrics: the real psycopg pool and the real Redis client pool.

Only meaningful on the production backends: skipped on the embedded default (SQLite has no
pool; the local-memory cache has no connections).
"""

from __future__ import annotations

import threading

import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import connection

from conftest import on_postgres
from ispsupport.tests.observability import scrape

pytestmark = pytest.mark.django_db


@pytest.mark.postgres
@pytest.mark.skipif(not on_postgres(), reason="the connection pool exists on PostgreSQL only")
def test_the_database_pool_reports_its_size_and_requests_waiting_when_saturated():
    connection.ensure_connection()
    pool = connection._connection_pools["default"]
    maximum = settings.DATABASES["default"]["OPTIONS"]["pool"]["max_size"]

    first = scrape()
    assert first.value("ispsupport_db_pool_max_connections", alias="default") == maximum
    assert first.value("ispsupport_db_pool_connections", alias="default", state="in_use") >= 1
    assert first.value("ispsupport_db_pool_requests_waiting", alias="default") == 0

    held = [pool.getconn() for _ in range(maximum - 1)]  # the test itself holds the last one
    got: list = []
    waiter = threading.Thread(target=lambda: got.append(pool.getconn(timeout=10)), daemon=True)
    waiter.start()
    try:
        for _ in range(100):  # until the waiter queues
            if pool.get_stats().get("requests_waiting"):
                break
            threading.Event().wait(0.02)
        saturated = scrape()
    finally:
        for conn in held:
            pool.putconn(conn)
        waiter.join(10)
        for conn in got:
            pool.putconn(conn)

    assert saturated.value("ispsupport_db_pool_requests_waiting", alias="default") == 1
    in_use = saturated.value("ispsupport_db_pool_connections", alias="default", state="in_use")
    assert in_use == maximum
    assert saturated.value("ispsupport_db_pool_checkouts_total", alias="default") >= maximum


@pytest.mark.redis
@pytest.mark.skipif(not settings.CACHE_REDIS_URL, reason="needs REDIS_URL (django-redis cache)")
def test_the_redis_pool_reports_its_connections_and_maximum():
    cache.set("metrics:probe", "1", timeout=10)
    assert cache.get("metrics:probe") == "1"

    samples = scrape()

    assert samples.value("ispsupport_redis_pool_max_connections", pool="cache") > 0
    connections = samples.value(
        "ispsupport_redis_pool_connections", pool="cache", state="idle"
    ) + samples.value("ispsupport_redis_pool_connections", pool="cache", state="in_use")
    assert connections >= 1


@pytest.mark.redis
@pytest.mark.skipif(not settings.REDIS_URL, reason="needs REDIS_URL (Redis broker)")
def test_messages_waiting_in_a_celery_queue_are_counted(settings):
    import redis

    from ispsupport.celery import app

    queue = "webhooks"
    broker = redis.Redis.from_url(settings.REDIS_URL)
    broker.delete(queue)
    settings.CELERY_BROKER_URL = settings.REDIS_URL
    settings.CELERY_TASK_ALWAYS_EAGER = False
    app.conf.task_always_eager = False
    try:
        before = scrape()
        for _ in range(3):  # published for real, and no worker consumes them here
            app.send_task("whatsapp.process_pending_webhook_events", queue=queue)
        samples = scrape()
    finally:
        app.conf.task_always_eager = True
        broker.delete(queue)
        broker.close()

    assert samples.value("ispsupport_celery_queue_length", queue=queue) == 3
    published = "ispsupport_celery_tasks_published_total"
    assert samples.value(published, queue=queue) - before.value(published, queue=queue) == 3
