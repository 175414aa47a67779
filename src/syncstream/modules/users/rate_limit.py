"""Slow down password guessing: a bounded number of failed sign-ins per account and per
client address in a sliding window, answered with 429 and ``Retry-After``.

The per-address allowance is a multiple of the per-account one: many people share an
address (an office behind NAT, a test suite on loopback), and one of them mistyping a
password must not lock all the others out. The per-account limit is the one that stops
guessing a given password; the per-address one only caps spraying across accounts.

In-process by design: it protects each server process, which is what the cost of a
password hash (the thing an attacker burns) is paid in. A shared limit would need the bus.
"""

from __future__ import annotations

import math
import time
from collections import deque

from syncstream import problems

_MAX_KEYS = 100_000
#: How many accounts' worth of failures one client address may spend in a window.
ADDRESS_FACTOR = 10


class SignInLimiter:
    def __init__(self, attempts: int, window_seconds: float) -> None:
        self.attempts = attempts
        self.window = window_seconds
        self._failures: dict[str, deque[float]] = {}

    def _keys(self, email: str, address: str) -> tuple[tuple[str, int], ...]:
        """Each counter a sign-in touches, with the failures it allows per window."""
        return ((f"email:{email}", self.attempts), (f"addr:{address}", self.attempts * ADDRESS_FACTOR))

    def _recent(self, key: str, now: float) -> deque[float]:
        entries = self._failures.get(key)
        if entries is None:
            return deque()
        while entries and entries[0] <= now - self.window:
            entries.popleft()
        if not entries:
            del self._failures[key]
        return entries

    def check(self, email: str, address: str) -> None:
        now = time.monotonic()
        for key, allowed in self._keys(email, address):
            entries = self._recent(key, now)
            if len(entries) >= allowed:
                retry_after = max(1, math.ceil(entries[0] + self.window - now))
                raise problems.too_many_requests(
                    "Too many failed sign-in attempts; try again later.", retry_after
                )

    def failed(self, email: str, address: str) -> None:
        now = time.monotonic()
        if len(self._failures) > _MAX_KEYS:
            self._failures.clear()  # a flood of distinct keys must not exhaust memory
        for key, _ in self._keys(email, address):
            self._failures.setdefault(key, deque()).append(now)

    def succeeded(self, email: str) -> None:
        self._failures.pop(f"email:{email}", None)
