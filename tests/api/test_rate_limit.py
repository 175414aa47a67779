"""The sign-in and sign-up limiters on their own, with a clock the test moves (no sleeping)."""

from __future__ import annotations

import pytest

from syncstream.modules.users import rate_limit
from syncstream.modules.users.rate_limit import (
    ADDRESS_FACTOR,
    FORGET_AFTER_SECONDS,
    MAX_LOCK_WINDOWS,
    SignInLimiter,
    SignUpLimiter,
)
from syncstream.problems import Problem


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(rate_limit.time, "monotonic", fake)
    return fake


def limited(limiter: SignInLimiter, email: str, address: str = "10.0.0.1") -> Problem | None:
    try:
        limiter.check(email, address)
    except Problem as problem:
        return problem
    return None


def retry_after(problem: Problem | None) -> int:
    assert problem is not None
    assert (problem.status, problem.type) == (429, "too_many_requests")
    return int(problem.headers["Retry-After"])


def test_a_pair_is_locked_after_its_attempts_and_only_that_pair(clock: Clock) -> None:
    limiter = SignInLimiter(attempts=3, window_seconds=60)
    for _ in range(3):
        assert limited(limiter, "a@x", "stranger") is None
        limiter.failed("a@x", "stranger")
        clock.now += 1
    assert retry_after(limited(limiter, "a@x", "stranger")) == 59  # locked at 1002 for 60 s; now 1003
    # The owner, from an address of their own, is not locked out by a stranger's guesses.
    assert limited(limiter, "a@x", "owner") is None
    # Another account from the stranger's address is not either.
    assert limited(limiter, "b@x", "stranger") is None


def test_the_lock_grows_with_each_failure_after_the_free_ones(clock: Clock) -> None:
    limiter = SignInLimiter(attempts=3, window_seconds=10)
    for _ in range(2):
        limiter.failed("a@x", "ip")
    assert limited(limiter, "a@x", "ip") is None
    locks = []
    for _ in range(10):
        limiter.failed("a@x", "ip")
        lock = retry_after(limited(limiter, "a@x", "ip"))
        locks.append(lock)
        clock.now += lock - 0.5
        assert limited(limiter, "a@x", "ip") is not None  # still locked just before the end
        clock.now += 0.5
        assert limited(limiter, "a@x", "ip") is None  # and free at the end
    assert locks == [10, 20, 40, 80, 160, 320, 640, 640, 640, 640]
    assert locks[-1] == 10 * MAX_LOCK_WINDOWS


def test_refused_attempts_do_not_lengthen_the_lock(clock: Clock) -> None:
    limiter = SignInLimiter(attempts=1, window_seconds=60)
    limiter.failed("a@x", "ip")
    for _ in range(50):  # an owner hammering the button while locked
        assert retry_after(limited(limiter, "a@x", "ip")) == 60
    clock.now += 60
    assert limited(limiter, "a@x", "ip") is None


def test_success_clears_the_pair(clock: Clock) -> None:
    limiter = SignInLimiter(attempts=2, window_seconds=60)
    limiter.failed("a@x", "ip")
    limiter.succeeded("a@x", "ip")
    limiter.failed("a@x", "ip")
    assert limited(limiter, "a@x", "ip") is None


def test_a_pair_quiet_for_a_day_starts_afresh(clock: Clock) -> None:
    limiter = SignInLimiter(attempts=2, window_seconds=60)
    for _ in range(5):
        limiter.failed("a@x", "ip")
        clock.now += limiter.lock_seconds(5)
    clock.now += FORGET_AFTER_SECONDS + 1
    limiter.failed("a@x", "ip")
    assert limited(limiter, "a@x", "ip") is None  # one failure of two free ones
    limiter.failed("a@x", "ip")
    assert retry_after(limited(limiter, "a@x", "ip")) == 60  # and back to the first lock


def test_one_address_may_fail_for_many_accounts_before_it_is_limited(clock: Clock) -> None:
    """Brute force from one address is as slow as before: attempts x 10 failures a window."""
    limiter = SignInLimiter(attempts=2, window_seconds=60)
    allowed = 2 * ADDRESS_FACTOR
    for n in range(allowed):
        assert limited(limiter, f"user{n}@x", "office") is None
        limiter.failed(f"user{n}@x", "office")
    assert retry_after(limited(limiter, "fresh@x", "office")) == 60
    assert limited(limiter, "fresh@x", "elsewhere") is None
    clock.now += 60  # the window slides
    assert limited(limiter, "fresh@x", "office") is None


def test_sign_ups_are_limited_per_address_in_a_sliding_window(clock: Clock) -> None:
    limiter = SignUpLimiter(sign_ups=3, window_seconds=100)
    for _ in range(3):
        limiter.attempt("flood")
        clock.now += 10
    with pytest.raises(Problem) as refused:
        limiter.attempt("flood")
    assert retry_after(refused.value) == 70  # the first sign-up, at 1000, leaves the window at 1100
    limiter.attempt("someone-else")
    clock.now += 70
    limiter.attempt("flood")
