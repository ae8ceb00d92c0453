"""Helpers for the security tests: a Redis that is down (a real client, an unused port)."""

import socket

import pytest

from ispsupport import ratelimit


def unused_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def redis_down(settings):
    """The default cache (and so the rate limiter) on a Redis nobody listens to."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{unused_port()}/0",
            "OPTIONS": {
                "CLIENT_CLASS": "django_redis.client.DefaultClient",
                "SOCKET_CONNECT_TIMEOUT": 0.5,
                "SOCKET_TIMEOUT": 0.5,
            },
        }
    }
    ratelimit.reset_backend()
    yield
    ratelimit.reset_backend()


@pytest.fixture(autouse=True)
def _fresh_limiter():
    ratelimit.reset_backend()
    yield
    ratelimit.reset_backend()
