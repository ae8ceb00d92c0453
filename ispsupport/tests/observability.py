"""Test helpers for metrics and logs: scrape ``/metrics`` like Prometheus, read the JSON log.

``scrape()`` asks the real endpoint (from loopback, as Prometheus would) and parses the text
exposition with prometheus_client's parser. Counters are process-wide and never reset, so
tests compare a value before and after an action (``Samples.value``).

``json_log()`` captures what the real console handler prints (its filters: request id and
personal-data mask) formatted by the production JSON formatter of ``settings.LOGGING``.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families
from pythonjsonlogger.json import JsonFormatter

from ispsupport import metrics


class Samples:
    def __init__(self, text: str) -> None:
        self.text = text
        self.families: dict[str, Any] = {}
        self._values: dict[tuple[str, frozenset], float] = {}
        for family in text_string_to_metric_families(text):
            self.families[family.name] = family
            for sample in family.samples:
                self._values[(sample.name, frozenset(sample.labels.items()))] = sample.value

    def value(self, name: str, **labels: str) -> float:
        """A sample's value (0 when the series has no such sample yet)."""
        return self._values.get((name, frozenset(labels.items())), 0.0)

    def has(self, name: str, **labels: str) -> bool:
        return (name, frozenset(labels.items())) in self._values

    def names(self) -> set[str]:
        """Every exposed name as written in ``# TYPE`` lines (counters with ``_total``)."""
        return {line.split()[2] for line in self.text.splitlines() if line.startswith("# TYPE ")}


def scrape(**extra: Any) -> Samples:
    metrics.clear_state_cache()
    response = Client().get("/metrics", **extra)
    assert response.status_code == 200, response.content[:200]
    return Samples(response.content.decode())


def _console_handler() -> logging.Handler:
    for handler in logging.getLogger().handlers:
        if handler.get_name() == "console":
            return handler
    raise AssertionError("the console handler of settings.LOGGING is not installed")


@contextmanager
def json_log() -> Iterator[list[dict[str, Any]]]:
    """The JSON lines the console handler writes inside the block (a list filled on exit)."""
    handler = _console_handler()
    stream = io.StringIO()
    previous_stream = handler.setStream(stream)  # type: ignore[attr-defined]
    previous_formatter = handler.formatter
    handler.setFormatter(JsonFormatter(settings.LOGGING["formatters"]["json"]["fmt"]))
    lines: list[dict[str, Any]] = []
    try:
        yield lines
    finally:
        handler.setStream(previous_stream)  # type: ignore[attr-defined]
        handler.setFormatter(previous_formatter)
        lines.extend(json.loads(line) for line in stream.getvalue().splitlines() if line.strip())
