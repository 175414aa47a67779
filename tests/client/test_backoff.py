"""The reconnection delays (pure arithmetic: no clock involved)."""

from __future__ import annotations

import random

import pytest

from syncstream.client import Backoff


def test_delays_grow_exponentially_within_the_jitter_band() -> None:
    backoff = Backoff(initial=1.0, maximum=30.0, multiplier=2.0, jitter=0.5, rng=random.Random(7))
    for failures, ceiling in ((1, 1.0), (2, 2.0), (3, 4.0), (6, 30.0), (500, 30.0)):
        for _ in range(50):
            assert ceiling / 2 <= backoff.delay(failures) <= ceiling


def test_the_server_retry_hint_is_the_base() -> None:
    backoff = Backoff(initial=1.0, jitter=0.0)
    assert backoff.delay(1, server_retry=5.0) == 5.0
    assert backoff.delay(2, server_retry=5.0) == 10.0
    assert Backoff(initial=1.0, jitter=0.0, honour_server_retry=False).delay(1, server_retry=5.0) == 1.0


def test_retry_after_raises_the_wait_but_maximum_bounds_it() -> None:
    backoff = Backoff(initial=1.0, maximum=30.0, jitter=0.0)
    assert backoff.delay(1, retry_after=12.0) == 12.0
    assert backoff.delay(1, retry_after=3600.0) == 30.0


def test_invalid_policies_are_refused() -> None:
    with pytest.raises(ValueError, match="Backoff"):
        Backoff(multiplier=0.5)
