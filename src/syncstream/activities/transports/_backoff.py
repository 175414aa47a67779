"""How long a doorbell waits before trying to reach the bus again."""

from __future__ import annotations

import random

BASE_DELAY = 0.1
"""Seconds before the first retry: a dropped connection to a live server comes back almost at once."""

MAX_DELAY = 5.0
"""Ceiling, so that a bus that comes back is noticed within a few seconds."""


def reconnect_delay(failures: int, *, base: float = BASE_DELAY, cap: float = MAX_DELAY) -> float:
    """Delay before the next attempt after `failures` consecutive failed attempts (0 for the first retry).

    Exponential, so that a dead bus is not hammered; jittered ("equal jitter": half the step is
    fixed, half random), so that a fleet of processes does not reconnect in lock-step when the bus
    comes back, while no retry ever fires in a hot loop.
    """
    step = min(cap, base * 2.0 ** min(max(failures, 0), 32))
    return step / 2 + random.uniform(0, step / 2)
