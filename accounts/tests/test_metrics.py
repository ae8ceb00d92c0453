"""Accounts' series: log-ins and failures, lockouts, sessions, API tokens (read on /metrics)."""

from __future__ import annotations

import pytest
from django.test import Client
from rest_framework.test import APIClient

from accounts import services
from accounts.models import UserSession
from ispsupport.tests.observability import scrape

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery-9"


def _login(client, username, password):
    return client.post("/accounts/login/", {"username": username, "password": password})


def test_log_ins_failures_and_the_lockout_are_counted(client, agent):
    before = scrape()

    assert _login(client, "agente", "senha-errada").status_code == 200
    assert _login(client, "agente", PASSWORD).status_code == 302
    elsewhere = Client()  # not logged in
    for _ in range(5):
        _login(elsewhere, "agente", "senha-errada")
    assert _login(elsewhere, "agente", PASSWORD).status_code == 429  # locked out

    after = scrape()
    delta = lambda name, **labels: after.value(name, **labels) - before.value(name, **labels)  # noqa: E731
    assert delta("ispsupport_logins_total", result="success") == 1
    assert delta("ispsupport_logins_total", result="failure") >= 6
    assert delta("ispsupport_login_lockouts_total") >= 1
    assert after.value("ispsupport_sessions_active") == 1


def test_ended_sessions_are_counted_by_reason_and_leave_the_active_gauge(client, agent):
    assert _login(client, "agente", PASSWORD).status_code == 302
    assert scrape().value("ispsupport_sessions_active") == 1
    before = scrape()

    record = UserSession.objects.get(user=agent)
    assert services.session_revoke(user=agent, session_id=record.pk)

    after = scrape()
    name = "ispsupport_sessions_ended_total"
    assert after.value(name, reason="revoked") - before.value(name, reason="revoked") == 1
    assert after.value("ispsupport_sessions_active") == 0


def test_api_token_checks_are_counted_by_result(agent):
    _token, secret = services.api_token_create(
        user=agent, name="ERP", scope="read", expires_in_days=30
    )
    before = scrape()

    good, bad = APIClient(), APIClient()
    good.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    bad.credentials(HTTP_AUTHORIZATION="Bearer isp_not-a-real-token-at-all")
    assert good.get("/api/v1/conversations/").status_code == 200
    assert bad.get("/api/v1/conversations/").status_code == 401

    after = scrape()
    name = "ispsupport_api_token_authentications_total"
    assert after.value(name, result="ok") - before.value(name, result="ok") == 1
    assert after.value(name, result="invalid") - before.value(name, result="invalid") == 1
