"""Rate limits in Redis (GCRA, shared by every process): log-in per IP and per username, the
API per token/user, the webhook per IP; 429 with Retry-After. With Redis unreachable, log-in
fails closed (503) and the webhook fails open (Meta's events are never refused)."""

import os

import pytest
from axes.models import AccessAttempt
from rest_framework.test import APIClient

from accounts import services
from ispsupport import ratelimit
from whatsapp.models import WebhookEvent
from whatsapp.testing import envelope, signed_post, text_message

pytestmark = pytest.mark.django_db


def _login(client, username, password="errada-123456"):  # noqa: S107
    return client.post("/accounts/login/", {"username": username, "password": password})


def test_login_is_limited_per_ip_with_retry_after(client, settings, agent):
    settings.RATE_LIMIT_LOGIN_IP = "3/60"
    for name in ("a", "b", "c"):
        assert _login(client, name).status_code == 200
    refused = _login(client, "d")
    assert refused.status_code == 429
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert "Muitas tentativas" in refused.content.decode()


def test_login_is_limited_per_username_across_addresses(settings, agent):
    from django.test import Client

    settings.RATE_LIMIT_LOGIN_USERNAME = "2/60"
    settings.AXES_FAILURE_LIMIT = 100
    assert _login(Client(REMOTE_ADDR="198.51.100.1"), "agente").status_code == 200
    assert _login(Client(REMOTE_ADDR="198.51.100.2"), "AGENTE").status_code == 200
    refused = _login(Client(REMOTE_ADDR="198.51.100.3"), "agente")
    assert refused.status_code == 429 and "Retry-After" in refused


def test_webhook_is_limited_per_ip(client, settings):
    settings.RATE_LIMIT_WEBHOOK_IP = "2/60"
    body = envelope(messages=[text_message()])
    assert signed_post(client, body).status_code == 200
    assert signed_post(client, body).status_code == 200
    refused = signed_post(client, body)
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) >= 1


@pytest.mark.urls("accounts.tests.api_urls")
def test_api_is_limited_per_token(settings, agent):
    settings.RATE_LIMIT_API = "2/60"
    _t, secret = services.api_token_create(user=agent, name="x", scope="read", expires_in_days=1)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert client.get("/api/v1/echo/").status_code == 200
    assert client.get("/api/v1/echo/").status_code == 200
    refused = client.get("/api/v1/echo/")
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) >= 1
    # another token of the same user has its own budget
    _t, other = services.api_token_create(user=agent, name="y", scope="read", expires_in_days=1)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {other}")
    assert client.get("/api/v1/echo/").status_code == 200


def test_login_fails_closed_when_redis_is_down(client, agent, redis_down):
    response = _login(client, "agente", "correct-horse-battery-9")
    assert response.status_code == 503
    assert response["Retry-After"] == "30"
    assert "indisponível" in response.content.decode()
    assert "_auth_user_id" not in client.session
    assert not AccessAttempt.objects.exists()  # refused before authenticating


def test_webhook_fails_open_when_redis_is_down(client, redis_down):
    response = signed_post(client, envelope(messages=[text_message(text="Sem sinal")]))
    assert response.status_code == 200
    # accepted and stored durably (processing retries later if Redis is needed downstream)
    assert WebhookEvent.objects.count() == 1


@pytest.mark.urls("accounts.tests.api_urls")
def test_api_fails_open_when_redis_is_down(agent, redis_down):
    _t, secret = services.api_token_create(user=agent, name="x", scope="read", expires_in_days=1)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert client.get("/api/v1/echo/").status_code == 200


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL")
def test_the_limit_is_shared_by_separate_redis_connections():
    """Two processes are two connections: both consume from the same budget."""
    import redis
    from django.conf import settings

    first = ratelimit.RedisBackend(redis.Redis.from_url(settings.CACHE_REDIS_URL))
    second = ratelimit.RedisBackend(redis.Redis.from_url(settings.CACHE_REDIS_URL))
    rule = ratelimit.Rule("test:shared:login", 3, 60)
    ratelimit.RedisBackend(redis.Redis.from_url(settings.CACHE_REDIS_URL)).clear(rule.key)
    assert first.allow_all([rule])[0]
    assert second.allow_all([rule])[0]
    assert first.allow_all([rule])[0]
    allowed, retry = second.allow_all([rule])
    assert not allowed and 0 < retry <= 20
