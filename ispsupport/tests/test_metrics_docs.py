"""README's list of series, the Grafana dashboard and the alert rules agree with ``/metrics``.

A series renamed in code but not in README, a dashboard panel or an alert naming a series that
does not exist: each fails here, naming it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from ispsupport.tests.observability import Samples, scrape

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent.parent
METRIC_NAME = re.compile(r"\b(?:ispsupport|django|process|python)_[a-zA-Z0-9_]+\b")
README_ROW = re.compile(r"^\| `((?:ispsupport|django)_[a-z0-9_]+)` \| (counter|gauge|histogram) \|")
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def _readme_series() -> dict[str, str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Metrics and logs", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        match = README_ROW.match(line)
        if match:
            rows[match[1]] = match[2]
    return rows


def _types(samples: Samples) -> dict[str, str]:
    """Exposed name (as in ``# TYPE`` lines) → type."""
    return {
        parts[2]: parts[3]
        for line in samples.text.splitlines()
        if line.startswith("# TYPE ") and len(parts := line.split()) == 4
    }


def _exists(name: str, types: dict[str, str]) -> bool:
    if name in types:
        return True
    for suffix in HISTOGRAM_SUFFIXES:
        if name.endswith(suffix) and types.get(name[: -len(suffix)]) == "histogram":
            return True
    return False


def test_every_series_documented_in_readme_is_in_metrics_with_its_type():
    documented = _readme_series()
    types = _types(scrape())

    assert len(documented) >= 50
    missing = sorted(name for name in documented if name not in types)
    assert not missing, f"README lists series that /metrics does not expose: {missing}"
    wrong = sorted(n for n, t in documented.items() if types[n] != t)
    assert not wrong, f"README gives the wrong type for: {wrong}"


def test_every_own_series_in_metrics_is_documented_in_readme():
    documented = _readme_series()
    exposed = {name for name in _types(scrape()) if name.startswith("ispsupport_")}

    undocumented = sorted(exposed - set(documented))
    assert not undocumented, f"add these to README 'Metrics and logs' → Series: {undocumented}"


def _dashboard_expressions() -> list[tuple[str, str]]:
    dashboard = json.loads((ROOT / "deploy" / "grafana-dashboard.json").read_text())
    found = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            found.append((panel["title"], target["expr"]))
    return found


def _alert_expressions() -> list[tuple[str, str]]:
    rules = yaml.safe_load((ROOT / "deploy" / "prometheus-alerts.yml").read_text())
    return [(rule["alert"], rule["expr"]) for group in rules["groups"] for rule in group["rules"]]


def test_the_grafana_dashboard_is_importable_and_names_only_existing_series():
    dashboard = json.loads((ROOT / "deploy" / "grafana-dashboard.json").read_text())
    assert dashboard["uid"] and dashboard["title"] and dashboard["schemaVersion"] >= 30
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    types = _types(scrape())

    expressions = _dashboard_expressions()
    assert len(expressions) >= 40
    problems = []
    for title, expr in expressions:
        names = METRIC_NAME.findall(expr)
        if not names:
            problems.append(f"{title!r}: no metric in {expr!r}")
        problems += [f"{title!r}: {n}" for n in names if not _exists(n, types)]
    assert not problems, "dashboard panels naming series /metrics does not expose:\n" + "\n".join(
        problems
    )


def test_the_alert_rules_are_valid_and_name_only_existing_series():
    rules = yaml.safe_load((ROOT / "deploy" / "prometheus-alerts.yml").read_text())
    types = _types(scrape())
    problems = []
    alerts = [rule for group in rules["groups"] for rule in group["rules"]]
    for rule in alerts:
        for key in ("alert", "expr", "for"):
            if not rule.get(key):
                problems.append(f"{rule.get('alert')}: no {key}")
        if rule.get("labels", {}).get("severity") not in ("critical", "warning", "info"):
            problems.append(f"{rule['alert']}: severity must be critical, warning or info")
        if not rule.get("annotations", {}).get("summary"):
            problems.append(f"{rule['alert']}: needs a summary")
        names = METRIC_NAME.findall(rule["expr"])
        if not names:
            problems.append(f"{rule['alert']}: no metric in {rule['expr']!r}")
        problems += [f"{rule['alert']}: {n}" for n in names if not _exists(n, types)]
    assert not problems, "\n".join(problems)
    # What the operation must be woken for.
    covered = " ".join(rule["expr"] for rule in alerts)
    for series in (
        "ispsupport_webhook_oldest_pending_seconds",
        "ispsupport_outbox_oldest_pending_seconds",
        "ispsupport_circuit_breaker_state",
        "ispsupport_conversations_sla_breached",
        "django_http_responses_total_by_status_total",
    ):
        assert series in covered, f"no alert on {series}"


def test_the_check_catches_a_series_that_does_not_exist():
    types = _types(scrape())
    assert not _exists("ispsupport_webhook_events_recieved_total", types)
    assert _exists("ispsupport_webhook_ack_duration_seconds_bucket", types)
    assert not _exists("ispsupport_webhook_events_received_total_bucket", types)
