"""Personal API tokens: shown once, hashed at rest, expiry, revocation and scopes."""

import hashlib
import re
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from accounts import services
from accounts.models import ApiToken
from accounts.tests.helpers import login_verified

pytestmark = pytest.mark.django_db


def _bearer(secret):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def test_creating_a_token_shows_the_secret_once_and_stores_only_its_hash(client, agent):
    login_verified(client, agent)
    response = client.post(
        "/accounts/tokens/", {"name": "ERP", "scope": "read", "expires_in_days": 30}
    )
    assert response.status_code == 201
    secret = re.search(r'<code class="secret">(isp_[\w-]+)</code>', response.content.decode())[1]
    token = ApiToken.objects.get(user=agent)
    assert token.key_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert secret.startswith(token.prefix)
    # the secret is in no column of the table
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {ApiToken._meta.db_table}")  # noqa: S608
        assert all(secret not in str(value) for row in cursor.fetchall() for value in row)
    # and never shown again
    listing = client.get("/accounts/tokens/").content.decode()
    assert secret not in listing and token.prefix in listing


@pytest.mark.urls("accounts.tests.api_urls")
def test_a_token_authenticates_as_its_user_and_records_last_use(agent):
    token, secret = services.api_token_create(
        user=agent, name="ERP", scope="read", expires_in_days=30
    )
    response = _bearer(secret).get("/api/v1/echo/")
    assert response.status_code == 200
    assert response.json() == {"user": "agente"}
    token.refresh_from_db()
    assert token.last_used_at is not None


@pytest.mark.urls("accounts.tests.api_urls")
def test_a_read_token_cannot_post_and_a_write_token_can(agent):
    _t, read_secret = services.api_token_create(
        user=agent, name="leitura", scope="read", expires_in_days=30
    )
    _t, write_secret = services.api_token_create(
        user=agent, name="escrita", scope="write", expires_in_days=30
    )
    refused = _bearer(read_secret).post("/api/v1/echo/", {})
    assert refused.status_code == 403
    assert "somente leitura" in refused.json()["detail"]
    assert _bearer(write_secret).post("/api/v1/echo/", {}).status_code == 201


@pytest.mark.urls("accounts.tests.api_urls")
def test_expired_and_revoked_tokens_are_refused(agent):
    expired, expired_secret = services.api_token_create(
        user=agent, name="velho", scope="read", expires_in_days=1
    )
    ApiToken.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    revoked, revoked_secret = services.api_token_create(
        user=agent, name="revogado", scope="read", expires_in_days=30
    )
    assert _bearer(revoked_secret).get("/api/v1/echo/").status_code == 200
    services.api_token_revoke(token=revoked)

    for secret in (expired_secret, revoked_secret, "isp_naoexiste"):
        response = _bearer(secret).get("/api/v1/echo/")
        assert response.status_code == 401
        assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.urls("accounts.tests.api_urls")
def test_a_deactivated_users_token_is_refused(agent):
    _t, secret = services.api_token_create(user=agent, name="x", scope="read", expires_in_days=30)
    agent.is_active = False
    agent.save(update_fields=["is_active"])
    assert _bearer(secret).get("/api/v1/echo/").status_code == 401


def test_the_owner_revokes_from_the_page_and_others_cannot(client, agent, other_agent):
    token, _secret = services.api_token_create(
        user=agent, name="ERP", scope="read", expires_in_days=30
    )
    login_verified(client, other_agent)
    assert client.post(f"/accounts/tokens/{token.pk}/revoke/").status_code == 404
    login_verified(client, agent)
    assert client.post(f"/accounts/tokens/{token.pk}/revoke/").status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None


def test_expiry_beyond_the_maximum_is_refused(agent, settings):
    from django.core.exceptions import ValidationError

    settings.API_TOKEN_MAX_DAYS = 90
    with pytest.raises(ValidationError):
        services.api_token_create(user=agent, name="x", scope="read", expires_in_days=365)


def test_an_admin_revokes_in_the_admin(client, admin_member, agent):
    token, _s = services.api_token_create(user=agent, name="x", scope="read", expires_in_days=30)
    login_verified(client, admin_member)
    response = client.post(
        "/admin/accounts/apitoken/",
        {"action": "revoke_tokens", "_selected_action": [str(token.pk)], "index": 0},
    )
    assert response.status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None
