"""django-axes: 5 failures lock the username+IP pair for 15 minutes, with a pt-BR page."""

import pytest
from axes.models import AccessAttempt

from accounts.tests.helpers import login_verified

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery-9"


def _login(client, username, password):
    return client.post("/accounts/login/", {"username": username, "password": password})


def test_five_failures_lock_the_account_with_a_clear_ptbr_message(client, agent):
    for _ in range(5):
        response = _login(client, "agente", "senha-errada")
        assert response.status_code in (200, 429)
    locked = _login(client, "agente", PASSWORD)  # even the right password
    assert locked.status_code == 429
    html = locked.content.decode()
    assert "Acesso bloqueado temporariamente" in html
    assert "15 minutos" in html
    assert "administrador" in html
    assert locked["Retry-After"] == str(15 * 60)
    assert "_auth_user_id" not in client.session


def test_four_failures_then_the_right_password_gets_in(client, agent):
    for _ in range(4):
        assert _login(client, "agente", "senha-errada").status_code == 200
    response = _login(client, "agente", PASSWORD)
    assert response.status_code == 302
    assert not AccessAttempt.objects.exists()  # reset on success


def test_the_lock_is_per_username_and_ip(client, agent, other_agent):
    for _ in range(5):
        _login(client, "agente", "senha-errada")
    assert _login(client, "agente-financeiro", PASSWORD).status_code == 302
    from django.test import Client

    elsewhere = Client(REMOTE_ADDR="198.51.100.7")
    assert _login(elsewhere, "agente", PASSWORD).status_code == 302


def test_an_admin_unlocks_from_the_user_list(client, agent, admin_member):
    for _ in range(5):
        _login(client, "agente", "senha-errada")
    assert _login(client, "agente", PASSWORD).status_code == 429

    admin_client = type(client)()
    login_verified(admin_client, admin_member)
    response = admin_client.post(
        "/admin/accounts/user/",
        {"action": "unlock_login", "_selected_action": [str(agent.pk)], "index": 0},
    )
    assert response.status_code == 302
    assert not AccessAttempt.objects.filter(username="agente").exists()
    assert _login(client, "agente", PASSWORD).status_code == 302


def test_an_admin_unlocks_through_the_axes_admin(client, agent, admin_member):
    for _ in range(5):
        _login(client, "agente", "senha-errada")
    attempt = AccessAttempt.objects.get(username="agente")
    admin_client = type(client)()
    login_verified(admin_client, admin_member)
    assert admin_client.get("/admin/axes/accessattempt/").status_code == 200
    response = admin_client.post(f"/admin/axes/accessattempt/{attempt.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert _login(client, "agente", PASSWORD).status_code == 302


def test_a_supervisor_cannot_unlock(agent, supervisor, client):
    login_verified(client, supervisor)
    assert client.get("/admin/axes/accessattempt/").status_code == 403
