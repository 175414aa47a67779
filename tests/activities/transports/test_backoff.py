"""Reconnect delays grow exponentially up to a cap, are jittered, and never fire in a hot loop."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from syncstream.activities.transports._backoff import BASE_DELAY, MAX_DELAY, reconnect_delay


@given(st.integers(min_value=0, max_value=100_000))
def test_every_delay_is_at_least_half_the_base_and_at_most_the_cap(failures: int) -> None:
    assert BASE_DELAY / 2 <= reconnect_delay(failures) <= MAX_DELAY


def test_delays_start_short_and_grow_to_the_cap() -> None:
    assert reconnect_delay(0) <= BASE_DELAY
    assert reconnect_delay(3) >= 4 * BASE_DELAY
    assert reconnect_delay(100) >= MAX_DELAY / 2


def test_delays_are_jittered() -> None:
    assert len({reconnect_delay(4) for _ in range(20)}) > 1
