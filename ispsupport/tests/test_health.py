"""Operations endpoints: liveness, readiness naming the failing part, Prometheus metrics."""

import pytest

pytestmark = pytest.mark.django_db


def test_healthz_answers_ok_without_touching_dependencies(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_is_200_when_everything_is_reachable(client):
    response = client.get("/readyz")
    body = response.json()
    assert response.status_code == 200, body
    assert body["failing"] == []
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["cache"] == "ok"


def test_readyz_names_redis_when_it_is_unreachable(client, settings):
    # A real Redis client pointed at a port where nothing listens: the check must fail fast.
    dead = "redis://127.0.0.1:1/0"
    settings.CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": dead,
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.5, "SOCKET_TIMEOUT": 0.5},
        }
    }
    settings.CELERY_BROKER_URL = dead
    settings.CHANNEL_REDIS_URL = dead
    response = client.get("/readyz")
    body = response.json()
    assert response.status_code == 503
    assert "cache" in body["failing"]
    assert "broker" in body["failing"]
    assert "channel_layer" in body["failing"]
    assert body["checks"]["database"] == "ok"


def test_metrics_are_exposed_for_prometheus(client):
    client.get("/healthz")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert b"django_http_requests_total_by_method_total" in response.content
