"""Slow queries are logged with duration and our file:line, never with their parameters."""

from __future__ import annotations

import logging

import pytest
from django.db import connection

from ispsupport.querylog import scrub
from ispsupport.tests.observability import json_log, scrape

pytestmark = pytest.mark.django_db

# Portable (SQLite and PostgreSQL) and slow enough: counts to 300,000 with a recursive CTE.
SLOW_SQL = (
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < %s) "
    "SELECT count(*) FROM c WHERE %s <> ''"
)
PHONE = "5511987654321"


def _run_slow_query() -> None:
    with connection.cursor() as cursor:
        cursor.execute(SLOW_SQL, [300000, PHONE])
        cursor.fetchone()


def test_a_query_over_the_threshold_is_logged_with_duration_and_location(settings):
    before = scrape().value("ispsupport_db_slow_queries_total", alias="default")

    settings.DB_SLOW_QUERY_MS = 5  # only around the query: the scrapes' own queries stay quiet
    with json_log() as lines:
        _run_slow_query()
        line = _run_slow_query.__code__.co_firstlineno + 2  # the cursor.execute line
    settings.DB_SLOW_QUERY_MS = 500

    (entry,) = [e for e in lines if e["name"] == "ispsupport.db.slow"]
    assert entry["levelname"] == "WARNING"
    assert entry["duration_ms"] >= 5
    assert entry["alias"] == "default"
    assert entry["location"] == f"ispsupport/tests/test_querylog.py:{line} in _run_slow_query"
    assert entry["statement"].startswith("WITH RECURSIVE c(x) AS (SELECT ? UNION ALL")
    everything = str(entry)
    assert PHONE not in everything and "300000" not in everything
    after = scrape().value("ispsupport_db_slow_queries_total", alias="default")
    assert after - before == 1


def test_fast_queries_and_a_disabled_log_write_nothing(settings, caplog):
    caplog.set_level(logging.WARNING, logger="ispsupport.db.slow")
    settings.DB_SLOW_QUERY_MS = 500
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    settings.DB_SLOW_QUERY_MS = 0
    _run_slow_query()

    assert not [r for r in caplog.records if r.name == "ispsupport.db.slow"]


def test_the_statement_shape_keeps_no_literal():
    sql = "SELECT * FROM customer WHERE cpf = '12345678909' AND age > 42 AND name = 'O''Neil'"
    assert scrub(sql) == "SELECT * FROM customer WHERE cpf = ? AND age > ? AND name = ?"
