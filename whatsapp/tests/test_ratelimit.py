"""The shared limiter: GCRA on Redis (atomic across workers) and on the local-memory cache."""

from __future__ import annotations

import threading

import pytest
from django.conf import settings
from django.core.cache import caches

from ispsupport import ratelimit
from ispsupport.ratelimit import CacheBackend, RedisBackend, Rule

needs_redis = pytest.mark.skipif(not settings.REDIS_URL, reason="needs REDIS_URL")
T0 = 1_800_000_000_000_000  # a fixed clock (µs) so the tests do not depend on timing


def _redis_client():
    import redis

    return redis.Redis.from_url(settings.REDIS_URL)


def _locmem_backend():
    cache = caches.create_connection("default") if not settings.REDIS_URL else None
    if cache is None:
        from django.core.cache.backends.locmem import LocMemCache

        cache = LocMemCache("ratelimit-tests", {})
    cache.clear()
    return CacheBackend(cache)


@pytest.fixture
def redis_backend():
    client = _redis_client()
    for key in client.scan_iter(ratelimit.PREFIX + "t:*"):
        client.delete(key)
    yield RedisBackend(client)
    for key in client.scan_iter(ratelimit.PREFIX + "t:*"):
        client.delete(key)
    client.close()


def _hammer(backends, rule, *, steps, step_us, attempts_per_step):
    """Workers race on one rule; at each clock step all of them try several times at once."""
    allowed = [0] * len(backends)
    barrier = threading.Barrier(len(backends))

    def worker(index, backend):
        for step in range(steps):
            barrier.wait()
            for _ in range(attempts_per_step):
                ok, _wait = backend.allow_all([rule], now_us=T0 + step * step_us)
                allowed[index] += ok

    threads = [threading.Thread(target=worker, args=(i, b)) for i, b in enumerate(backends)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(allowed)


def _holds_burst_to_rate(backends):
    rule = Rule("t:number", limit=50, window_s=1.0, burst=5)
    # 101 instants 10 ms apart, 4 tries per worker each: 808 tries over one second.
    passed = _hammer(backends, rule, steps=101, step_us=10_000, attempts_per_step=4)
    # Exactly the burst plus one second at 50/s, whoever asked and however they raced.
    assert passed == 5 + 50
    ok, wait = backends[0].allow_all([rule], now_us=T0 + 1_000_000)
    assert not ok and 0 < wait <= 0.02  # refused with the moment of the next slot


@needs_redis
def test_limiter_holds_a_burst_to_the_rate_across_two_workers_sharing_redis(redis_backend):
    second_worker = RedisBackend(_redis_client())
    _holds_burst_to_rate([redis_backend, second_worker])


def test_limiter_holds_a_burst_to_the_rate_on_the_local_memory_cache():
    backend = _locmem_backend()
    _holds_burst_to_rate([backend, CacheBackend(backend.cache)])


@pytest.fixture(params=["locmem", pytest.param("redis", marks=needs_redis)])
def backend(request):
    if request.param == "redis":
        return request.getfixturevalue("redis_backend")
    return _locmem_backend()


def test_refusal_tells_exactly_when_to_retry(backend):
    rule = Rule("t:pair", limit=1, window_s=6.0, burst=2)
    assert backend.allow_all([rule], now_us=T0)[0]
    assert backend.allow_all([rule], now_us=T0)[0]
    ok, wait = backend.allow_all([rule], now_us=T0)
    assert not ok and wait == pytest.approx(6.0)
    assert not backend.allow_all([rule], now_us=T0 + 5_900_000)[0]
    assert backend.allow_all([rule], now_us=T0 + 6_000_000)[0]


def test_several_rules_consume_all_or_nothing(backend):
    roomy = Rule("t:roomy", limit=100, window_s=1.0, burst=1)
    tight = Rule("t:tight", limit=1, window_s=6.0, burst=1)
    assert backend.allow_all([roomy, tight], now_us=T0)[0]
    ok, wait = backend.allow_all([roomy, tight], now_us=T0 + 10_000)
    assert not ok and wait == pytest.approx(5.99)
    # The refusal did not spend the roomy rule's slot.
    assert backend.allow_all([roomy], now_us=T0 + 10_000)[0]


def test_hold_refuses_until_it_expires_and_never_shortens(backend):
    assert backend.held_for("t:customer") == 0
    backend.hold("t:customer", 30)
    backend.hold("t:customer", 1)
    assert 29 < backend.held_for("t:customer") <= 30
    assert backend.strike("t:customer", ttl_s=60) == 1
    assert backend.strike("t:customer", ttl_s=60) == 2
    backend.reset_strikes("t:customer")
    assert backend.strike("t:customer", ttl_s=60) == 1


def test_allow_uses_the_configured_cache_backend():
    ratelimit.reset_backend()
    expected = RedisBackend if settings.REDIS_URL else CacheBackend
    assert isinstance(ratelimit.get_backend(), expected)
    ratelimit.clear("t:login:someone")
    results = [ratelimit.allow("t:login:someone", 3, 60.0)[0] for _ in range(4)]
    assert results == [True, True, True, False]
    assert 0 < ratelimit.allow("t:login:someone", 3, 60.0)[1] <= 20
