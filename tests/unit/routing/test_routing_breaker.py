"""The circuit breaker's states, driven by a fake clock."""

from __future__ import annotations

from deeplocal.routing.breaker import BreakerState, CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def make(clock: Clock, threshold: int = 3) -> CircuitBreaker:
    return CircuitBreaker(failure_threshold=threshold, open_s=10, clock=clock)


def test_opens_after_threshold_consecutive_failures_only():
    clock = Clock()
    b = make(clock)
    b.record_failure()
    b.record_failure()
    b.record_success()  # resets the count
    b.record_failure()
    b.record_failure()
    assert b.state is BreakerState.CLOSED and b.acquire()
    b.record_failure()
    assert b.state is BreakerState.OPEN and not b.acquire() and not b.would_allow()
    assert b.opened_count == 1


def test_half_open_allows_one_trial_then_closes_on_success():
    clock = Clock()
    b = make(clock, threshold=1)
    b.record_failure()
    clock.now = 9.9
    assert not b.acquire()
    clock.now = 10.0
    assert b.state is BreakerState.HALF_OPEN
    assert b.acquire()
    assert not b.acquire()  # one trial at a time
    b.record_success()
    assert b.state is BreakerState.CLOSED and b.consecutive_failures == 0


def test_failed_trial_reopens_for_a_full_cool_down():
    clock = Clock()
    b = make(clock, threshold=5)
    for _ in range(5):
        b.record_failure()
    clock.now = 10
    assert b.acquire()
    b.record_failure()
    assert b.state is BreakerState.OPEN and b.opened_count == 2
    clock.now = 19.9
    assert not b.acquire()
    clock.now = 20
    assert b.acquire()


def test_release_frees_the_trial_slot_without_a_verdict():
    clock = Clock()
    b = make(clock, threshold=1)
    b.record_failure()
    clock.now = 10
    assert b.acquire()
    b.release()
    assert b.state is BreakerState.HALF_OPEN and b.acquire()
