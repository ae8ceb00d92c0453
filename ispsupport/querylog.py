"""Slow database queries: logged with their duration and where our code ran them.

An execute wrapper (Django's ``connection.execute_wrapper`` mechanism, installed on every
connection when it is created) times each query. A query slower than ``DB_SLOW_QUERY_MS``
(500 ms by default; 0 turns the log off) is counted in ``ispsupport_db_slow_queries_total`` and
logged as a WARNING with:

* ``duration_ms`` and the database ``alias``;
* ``location``: ``file.py:line in function`` of the innermost frame of *our* code (not Django,
  not a library) that led to the query, so the log names the line to fix;
* ``statement``: the SQL with every literal replaced by ``?`` and cut to 300 characters.

Never the parameters: they are customers' data (phone numbers, names, message text). Django
always sends values as parameters, and the literal scrub covers the rest.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from pathlib import Path
from typing import Any

from django.conf import settings

from ispsupport import metrics

logger = logging.getLogger("ispsupport.db.slow")

_ROOT = str(Path(__file__).resolve().parent.parent) + "/"
_SKIP = ("/site-packages/", "/dist-packages/", "/.venv/", "/ispsupport/querylog.py")
_LITERALS = [
    (re.compile(r"'(?:[^']|'')*'"), "?"),  # quoted strings
    (re.compile(r"\b\d+(?:\.\d+)?\b"), "?"),  # numbers
    (re.compile(r"\s+"), " "),
]
STATEMENT_MAX = 300


def scrub(sql: str) -> str:
    """The statement's shape without any literal value."""
    for pattern, replacement in _LITERALS:
        sql = pattern.sub(replacement, sql)
    return sql.strip()[:STATEMENT_MAX]


def caller_location() -> str:
    """``path:line in function`` of the innermost frame in this project outside the libraries."""
    frame = sys._getframe(1)
    while frame is not None:
        filename = frame.f_code.co_filename
        if filename.startswith(_ROOT) and not any(part in filename for part in _SKIP):
            return f"{filename[len(_ROOT) :]}:{frame.f_lineno} in {frame.f_code.co_name}"
        frame = frame.f_back
    return "unknown"


class SlowQueryLogger:
    """The execute wrapper; one instance per connection (see ``install``)."""

    def __init__(self, alias: str) -> None:
        self.alias = alias

    def __call__(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        threshold_ms = float(getattr(settings, "DB_SLOW_QUERY_MS", 500) or 0)
        if threshold_ms <= 0:
            return execute(sql, params, many, context)
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            elapsed_ms = (time.perf_counter() - started) * 1000.0
            if elapsed_ms >= threshold_ms:
                self._report(sql, elapsed_ms, many)

    def _report(self, sql: str, elapsed_ms: float, many: bool) -> None:
        metrics.DB_SLOW_QUERIES.labels(alias=self.alias).inc()
        location = caller_location()
        logger.warning(
            "slow query: %.0f ms at %s",
            elapsed_ms,
            location,
            extra={
                "duration_ms": round(elapsed_ms, 1),
                "alias": self.alias,
                "location": location,
                "statement": scrub(sql if isinstance(sql, str) else str(sql)),
                "executemany": many,
            },
        )


def install(sender: Any = None, connection: Any = None, **_kwargs: Any) -> None:
    """``connection_created`` receiver: add the wrapper once per database wrapper object."""
    if connection is None:
        return
    if any(isinstance(w, SlowQueryLogger) for w in connection.execute_wrappers):
        return
    connection.execute_wrappers.append(SlowQueryLogger(connection.alias))
