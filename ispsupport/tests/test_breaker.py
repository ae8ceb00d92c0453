"""The cache-backed circuit breaker: shared state, opening, half-open trial, closing."""

from __future__ import annotations

import time

import pytest

from ispsupport.breaker import CircuitBreaker


def make(**kwargs) -> CircuitBreaker:
    options = {"fail_max": 3, "reset_timeout_s": 0.2}
    options.update(kwargs)
    return CircuitBreaker("test-service", **options)


def test_opens_after_fail_max_consecutive_failures():
    breaker = make()
    for _ in range(2):
        breaker.record_failure()
    assert breaker.allow() and breaker.state() == "closed"

    breaker.record_failure()

    assert breaker.state() == "open"
    assert not breaker.allow()


def test_a_success_resets_the_failure_count():
    breaker = make()
    breaker.record_failure()
    breaker.record_failure()
    breaker.record_success()
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.state() == "closed"


def test_state_is_shared_by_every_instance_with_the_same_name():
    worker_a, worker_b = make(), make()
    for _ in range(3):
        worker_a.record_failure()
    assert not worker_b.allow()
    assert make(fail_max=1).state() == "open"
    assert CircuitBreaker("other", fail_max=3, reset_timeout_s=1).state() == "closed"


def test_half_open_lets_exactly_one_trial_through_and_its_success_closes():
    breaker = make()
    for _ in range(3):
        breaker.record_failure()
    time.sleep(0.25)

    assert breaker.state() == "half_open"
    assert make().allow()  # the trial
    assert not make().allow()  # everyone else waits for it
    breaker.record_success()

    assert breaker.state() == "closed" and breaker.allow()


def test_a_failed_trial_opens_the_circuit_again():
    breaker = make()
    for _ in range(3):
        breaker.record_failure()
    time.sleep(0.25)
    assert breaker.allow()

    breaker.record_failure()

    assert breaker.state() == "open" and not breaker.allow()


def test_fail_max_must_be_positive():
    with pytest.raises(ValueError):
        CircuitBreaker("x", fail_max=0, reset_timeout_s=1)
