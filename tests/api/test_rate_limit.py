"""The sign-in limiter on its own, with a clock the test moves (no sleeping)."""

from __future__ import annotations

import pytest

from syncstream.modules.users import rate_limit
from syncstream.modules.users.rate_limit import ADDRESS_FACTOR, SignInLimiter
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


def test_an_account_is_limited_after_its_attempts(clock: Clock) -> None:
    limiter = SignInLimiter(attempts=3, window_seconds=60)
    for _ in range(3):
        assert limited(limiter, "a@x") is None
        limiter.failed("a@x", "10.0.0.1")
        clock.now += 1
    problem = limited(limiter, "a@x")
    assert problem is not None
    assert (problem.status, problem.type) == (429, "too_many_requests")
    assert problem.headers["Retry-After"] == "57"  # failures at 1000-1002, now 1003: 1060 - 1003
    assert limited(limiter, "b@x") is None  # another account from the same address


def test_the_window_slides(clock: Clock) -> None:
    limiter = SignInLimiter(attempts=2, window_seconds=10)
    limiter.failed("a@x", "ip")
    clock.now += 5
    limiter.failed("a@x", "ip")
    assert limited(limiter, "a@x") is not None
    clock.now += 5  # the first failure is now exactly one window old
    assert limited(limiter, "a@x") is None
    limiter.failed("a@x", "ip")
    assert limited(limiter, "a@x") is not None


def test_success_clears_the_account(clock: Clock) -> None:
    limiter = SignInLimiter(attempts=2, window_seconds=60)
    limiter.failed("a@x", "ip")
    limiter.succeeded("a@x")
    limiter.failed("a@x", "ip")
    assert limited(limiter, "a@x", "ip") is None


def test_one_address_may_fail_for_many_accounts_before_it_is_limited(clock: Clock) -> None:
    limiter = SignInLimiter(attempts=2, window_seconds=60)
    allowed = 2 * ADDRESS_FACTOR
    for n in range(allowed):
        assert limited(limiter, f"user{n}@x", "office") is None
        limiter.failed(f"user{n}@x", "office")
    problem = limited(limiter, "fresh@x", "office")
    assert problem is not None
    assert problem.status == 429
    assert limited(limiter, "fresh@x", "elsewhere") is None
