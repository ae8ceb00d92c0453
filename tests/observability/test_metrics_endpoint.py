"""``/metrics``: who may scrape it, what it exposes, and several processes adding up."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import prometheus_client
import pytest
from django.test import Client

from accounts.tests.helpers import login_verified
from ispsupport import metrics
from ispsupport.tests.observability import Samples, scrape

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent.parent
# Label names that would identify a person or a conversation: never on a series.
IDENTIFYING_LABELS = {
    "customer",
    "customer_id",
    "wa_id",
    "bsuid",
    "phone",
    "name",
    "cpf",
    "email",
    "conversation",
    "conversation_id",
    "protocol",
    "message_id",
    "wamid",
    "user",
    "user_id",
    "agent",
    "agent_id",
    "ip",
}


def test_prometheus_scrapes_from_loopback_in_its_text_format():
    response = Client().get("/metrics")

    assert response.status_code == 200
    assert response["Content-Type"] == prometheus_client.CONTENT_TYPE_LATEST
    assert response["Cache-Control"].startswith("max-age=0")
    assert "ispsupport_webhook_events_received_total" in response.content.decode()


@pytest.mark.parametrize("address", ["203.0.113.9", "2001:db8::7"])
def test_a_public_address_is_refused(address):
    assert Client(REMOTE_ADDR=address).get("/metrics").status_code == 403


def test_a_private_network_address_may_scrape():
    assert Client(REMOTE_ADDR="10.20.0.5").get("/metrics").status_code == 200


def test_a_request_relayed_by_a_proxy_we_were_not_told_about_is_refused(settings):
    settings.TRUSTED_PROXY_COUNT = 0
    relayed = Client(REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.9")
    assert relayed.get("/metrics").status_code == 403


def test_behind_a_trusted_proxy_the_client_address_decides(settings):
    settings.TRUSTED_PROXY_COUNT = 1
    inside = Client(REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="10.0.0.9")
    outside = Client(REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.9")
    assert inside.get("/metrics").status_code == 200
    assert outside.get("/metrics").status_code == 403


def test_an_empty_allowlist_lets_any_address_scrape(settings):
    settings.METRICS_IP_ALLOWLIST = []
    assert Client(REMOTE_ADDR="203.0.113.9").get("/metrics").status_code == 200


def test_with_a_token_only_the_bearer_token_opens_it_not_a_session(settings, admin_member):
    settings.METRICS_TOKEN = "scrape-secret-0123456789"
    anonymous = Client().get("/metrics")
    assert anonymous.status_code == 401
    assert anonymous["WWW-Authenticate"] == 'Bearer realm="metrics"'
    wrong = Client(HTTP_AUTHORIZATION="Bearer not-the-token").get("/metrics")
    assert wrong.status_code == 401
    admin = Client()
    login_verified(admin, admin_member)
    assert admin.get("/metrics").status_code == 401
    right = Client(HTTP_AUTHORIZATION="Bearer scrape-secret-0123456789")
    assert right.get("/metrics").status_code == 200
    # The token does not replace the network rule.
    public = Client(REMOTE_ADDR="203.0.113.9", HTTP_AUTHORIZATION="Bearer scrape-secret-0123456789")
    assert public.get("/metrics").status_code == 403


def test_only_get_is_allowed():
    assert Client().post("/metrics").status_code == 405


def test_at_least_fifty_own_series_each_with_help_and_no_identifying_labels():
    samples = scrape()
    own = {
        name: family for name, family in samples.families.items() if name.startswith("ispsupport_")
    }

    assert len(own) >= 50, sorted(own)
    for name, family in own.items():
        assert len(family.documentation) >= 20, f"{name} needs a help text that says what it is"
    label_names = {
        label
        for family in own.values()
        for sample in family.samples
        for label in sample.labels
        if label != "le"
    }
    assert not label_names & IDENTIFYING_LABELS, label_names & IDENTIFYING_LABELS


def test_a_failing_state_collector_is_counted_and_the_rest_still_answers():
    def broken():
        raise RuntimeError("database unreachable")

    metrics.register_state_collector("test_broken", broken)
    try:
        before = scrape().value(
            "ispsupport_metrics_collector_errors_total", collector="test_broken"
        )
        samples = scrape()
    finally:
        metrics._state_collectors.pop("test_broken", None)

    errors = samples.value("ispsupport_metrics_collector_errors_total", collector="test_broken")
    assert errors - before >= 1
    assert samples.has("ispsupport_conversations_open", state="bot")


# One Django process forks two "workers" (as gunicorn and Celery's prefork pool do); each counts
# in its own files, and a scrape in the parent reads them all.
_SCRIPT = textwrap.dedent(
    """
    import os
    import django
    os.environ["DJANGO_SETTINGS_MODULE"] = "ispsupport.settings"
    django.setup()
    from prometheus_client import generate_latest
    from ispsupport import metrics
    from whatsapp import metrics as whatsapp_metrics
    for count in (2, 3):
        pid = os.fork()
        if pid == 0:
            whatsapp_metrics.WEBHOOK_RECEIVED.inc(count)
            os._exit(0)
        os.waitpid(pid, 0)
    print(generate_latest(metrics.collect_registry()).decode())
    """
)


def test_several_processes_add_up_in_multiprocess_mode(tmp_path):
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "ISPSUPPORT_TESTING": "1"}
    result = subprocess.run(
        [sys.executable, "-c", _SCRIPT],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=120,
        capture_output=True,
        text=True,
    )

    samples = Samples(result.stdout)
    assert samples.value("ispsupport_webhook_events_received_total") == 5
    assert len(list(tmp_path.glob("counter_*.db"))) >= 2  # one file per process


def test_every_shared_circuit_breaker_shows_its_state(settings):
    from bot import ai
    from isp.erp import rest

    assert scrape().value("ispsupport_circuit_breaker_state", breaker="erp") == 0
    erp = rest.breaker()
    for _ in range(erp.fail_max):
        erp.record_failure()  # what the REST ERP adapter records on each 5xx

    samples = scrape()

    assert samples.value("ispsupport_circuit_breaker_state", breaker="erp") == 2
    assert samples.value("ispsupport_circuit_breaker_state", breaker="gemini") == 0
    assert ai.breaker().state() == "closed"
