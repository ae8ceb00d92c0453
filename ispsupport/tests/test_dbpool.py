"""Database pool: /readyz reports its saturation; an exhausted pool is logged for alerting."""

from __future__ import annotations

import logging

import pytest
from django.conf import settings
from django.core.signals import got_request_exception
from django.db import IntegrityError, OperationalError, connection

from ispsupport import dbpool

pytestmark = pytest.mark.django_db
on_postgres = settings.DATABASES["default"]["ENGINE"].endswith("postgresql")
needs_pool = pytest.mark.skipif(not on_postgres, reason="the pool is PostgreSQL's (psycopg)")


@needs_pool
def test_readyz_reports_the_pool_of_the_process(client):
    body = client.get("/readyz").json()
    pool = body["database_pool"]
    assert pool["max"] == settings.DATABASES["default"]["OPTIONS"]["pool"]["max_size"]
    assert pool["open"] >= 1  # this request holds one
    assert pool["in_use"] >= 1
    assert pool["waiting"] == 0
    assert body["failing"] == []


@pytest.mark.skipif(on_postgres, reason="the embedded SQLite default has no pool")
def test_readyz_without_a_pool_says_nothing_about_one(client):
    assert "database_pool" not in client.get("/readyz").json()


@needs_pool
def test_an_exhausted_pool_is_logged_with_its_event_name(caplog):
    from psycopg_pool import ConnectionPool

    params = connection.get_connection_params()
    params["autocommit"] = True
    pool = ConnectionPool(kwargs=params, min_size=0, max_size=1, timeout=0.3, open=True)
    held = pool.getconn()
    try:
        with caplog.at_level(logging.ERROR, logger="ispsupport.dbpool"):
            try:
                with connection.wrap_database_errors:  # what Django does around getconn()
                    pool.getconn()
            except OperationalError:
                got_request_exception.send(sender=None, request=None)
            try:
                raise IntegrityError("duplicate key")
            except IntegrityError:
                got_request_exception.send(sender=None, request=None)
    finally:
        pool.putconn(held)
        pool.close()
    records = [r for r in caplog.records if getattr(r, "event", "") == dbpool.POOL_EXHAUSTED_EVENT]
    assert len(records) == 1  # the pool timeout, not the unrelated error
    assert records[0].where == "request"


@needs_pool
@pytest.mark.django_db(transaction=True)
def test_after_the_servers_connections_are_dropped_the_next_query_gets_a_live_one():
    # What a PostgreSQL restart does to every idle pooled connection of a process: the next
    # request must get a working connection, not fail on a dead one (CONN_HEALTH_CHECKS).
    # A pool of its own, built by Django from the same settings, so what other tests left
    # checked out of the default pool does not matter.
    import psycopg
    from django.db import connections

    connections.settings["pool_probe"] = {**connections.settings["default"]}
    probe = connections["pool_probe"]
    pool = probe.pool  # what Django builds from DATABASES (with the check, or without)
    pool.open(wait=True, timeout=10)
    try:
        held = pool.getconn()
        (before,) = held.execute("SELECT pg_backend_pid()").fetchone()
        pool.putconn(held)  # back to its pool, idle: the pool's only connection
        params = probe.get_connection_params()
        params.pop("cursor_factory", None)
        params.pop("context", None)
        with psycopg.connect(**params, autocommit=True) as other:
            other.execute("SELECT pg_terminate_backend(%s)", [before])

        again = pool.getconn(timeout=5)
        try:
            (after,) = again.execute("SELECT pg_backend_pid()").fetchone()
        finally:
            pool.putconn(again)
        assert after != before
    finally:
        probe.close_pool()
        del connections["pool_probe"]
        del connections.settings["pool_probe"]
