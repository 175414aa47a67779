"""The reconnection delays (pure arithmetic: no clock involved)."""

from __future__ import annotations

import random

import pytest

from syncstream.client import Backoff


def test_the_default_policy_retries_within_half_a_second_then_doubles_up_to_ten() -> None:
    backoff = Backoff(rng=random.Random(7))
    for failures, ceiling in ((1, 0.5), (2, 1.0), (3, 2.0), (5, 8.0), (6, 10.0), (500, 10.0)):
        for _ in range(50):
            assert ceiling * 0.2 <= backoff.delay(failures) <= ceiling


def test_delays_grow_exponentially_within_the_jitter_band() -> None:
    backoff = Backoff(initial=1.0, maximum=30.0, multiplier=2.0, jitter=0.5, rng=random.Random(7))
    for failures, ceiling in ((1, 1.0), (2, 2.0), (3, 4.0), (6, 30.0), (500, 30.0)):
        for _ in range(50):
            assert ceiling / 2 <= backoff.delay(failures) <= ceiling


def test_an_unreachable_server_is_retried_within_a_second_for_the_first_fifteen() -> None:
    backoff = Backoff(jitter=0.0)
    assert backoff.delay(8, outage=14.9) == 1.0
    assert backoff.delay(1, outage=0.0) == 0.5  # below the fast bound: unchanged
    assert backoff.delay(8, outage=15.0) == 10.0  # a long outage backs off as usual
    assert backoff.delay(8) == 10.0  # a busy server (429/5xx) is backed off from at once


def test_the_server_retry_hint_is_ignored_unless_asked_for() -> None:
    assert Backoff(initial=1.0, jitter=0.0).delay(1, server_retry=5.0) == 1.0
    backoff = Backoff(initial=1.0, jitter=0.0, maximum=30.0, honour_server_retry=True)
    assert backoff.delay(1, server_retry=5.0) == 5.0
    assert backoff.delay(2, server_retry=5.0) == 10.0


def test_retry_after_raises_the_wait_beyond_maximum_but_within_its_own_bound() -> None:
    backoff = Backoff(initial=1.0, maximum=10.0, jitter=0.0)
    assert backoff.delay(1, retry_after=12.0) == 12.0
    assert backoff.delay(1, retry_after=3600.0) == 300.0


def test_invalid_policies_are_refused() -> None:
    with pytest.raises(ValueError, match="Backoff"):
        Backoff(multiplier=0.5)
    with pytest.raises(ValueError, match="max_attempts"):
        Backoff(max_attempts=-1)
