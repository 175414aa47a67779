"""Slow down password guessing and sign-up floods, answered with 429 and ``Retry-After``.

The sign-in policy (written down in docs/api.md, "Authentication"):

- **Per (account, client address)**: the first ``attempts`` failures in a row cost
  nothing; each one after that locks that pair out for a growing time: one window after
  failure ``attempts``, two after the next, then four, eight, … up to
  :data:`MAX_LOCK_WINDOWS` windows. A success from the pair clears it, and a pair with no
  failure for :data:`FORGET_AFTER_SECONDS` starts afresh. Attempts refused while locked
  are not failures: they neither hash a password nor lengthen the lock.
- **Per client address, across accounts**: at most ``attempts * ADDRESS_FACTOR`` failures
  in a sliding window, as before (a spray over many accounts from one address).

There is deliberately no lock per account alone: one that any stranger can trigger lets
anyone lock the owner out ("ten wrong passwords and the owner waits a minute, forever
renewable"). A stranger's failures now lock only the stranger's own pair; the owner,
from an address of their own, signs in. The price is that a guesser with many addresses
gets ``attempts`` free guesses from each (then the growing lock); argon2id's cost, the
per-address limit and the bounded hashing pool are what hold against that.

Sign-up: at most ``sign_ups`` per client address in a sliding window, counted before the
password is hashed (each sign-up costs a hash's memory and CPU, whatever its outcome).

In-process by design: it protects each server process, which is what the cost of a
password hash (the thing an attacker burns) is paid in. A shared limit would need the bus.
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass

from syncstream import problems

_MAX_KEYS = 100_000
#: How many accounts' worth of failures one client address may spend in a window.
ADDRESS_FACTOR = 10
#: The longest lock of one (account, address) pair, in windows (64 minutes by default).
MAX_LOCK_WINDOWS = 64
#: A pair with no failure for this long starts again with its free attempts.
FORGET_AFTER_SECONDS = 24 * 3600.0


class SlidingWindow:
    """At most ``allowed`` events per key in any ``window`` seconds."""

    def __init__(self, allowed: int, window: float) -> None:
        self.allowed = allowed
        self.window = window
        self._events: dict[str, deque[float]] = {}

    def _recent(self, key: str, now: float) -> deque[float]:
        entries = self._events.get(key)
        if entries is None:
            return deque()
        while entries and entries[0] <= now - self.window:
            entries.popleft()
        if not entries:
            del self._events[key]
        return entries

    def retry_after(self, key: str, now: float) -> int | None:
        """Seconds until ``key`` may have another event; None when it may now."""
        entries = self._recent(key, now)
        if len(entries) < self.allowed:
            return None
        return max(1, math.ceil(entries[0] + self.window - now))

    def add(self, key: str, now: float) -> None:
        if len(self._events) > _MAX_KEYS:
            self._events.clear()  # a flood of distinct keys must not exhaust memory
        self._events.setdefault(key, deque()).append(now)


@dataclass(slots=True)
class _Pair:
    failures: int = 0
    last_failure: float = 0.0
    locked_until: float = 0.0


class SignInLimiter:
    def __init__(self, attempts: int, window_seconds: float) -> None:
        self.attempts = attempts
        self.window = window_seconds
        self._pairs: dict[tuple[str, str], _Pair] = {}
        self._addresses = SlidingWindow(attempts * ADDRESS_FACTOR, window_seconds)

    def lock_seconds(self, failures: int) -> float:
        """How long failure number ``failures`` (in a row) locks its pair: 0 before
        ``attempts``, then one window, doubling up to :data:`MAX_LOCK_WINDOWS`."""
        if failures < self.attempts:
            return 0.0
        factor: int = min(1 << min(failures - self.attempts, 32), MAX_LOCK_WINDOWS)
        return self.window * factor

    def check(self, email: str, address: str) -> None:
        now = time.monotonic()
        pair = self._pairs.get((email, address))
        if pair is not None and pair.locked_until > now:
            raise problems.too_many_requests(
                "Too many failed sign-in attempts for this account from here; try again later.",
                max(1, math.ceil(pair.locked_until - now)),
            )
        retry = self._addresses.retry_after(address, now)
        if retry is not None:
            raise problems.too_many_requests("Too many failed sign-in attempts; try again later.", retry)

    def failed(self, email: str, address: str) -> None:
        now = time.monotonic()
        if len(self._pairs) > _MAX_KEYS:
            self._pairs.clear()  # a flood of distinct keys must not exhaust memory
        pair = self._pairs.setdefault((email, address), _Pair())
        if now - pair.last_failure > FORGET_AFTER_SECONDS:
            pair.failures = 0
        pair.failures += 1
        pair.last_failure = now
        pair.locked_until = now + self.lock_seconds(pair.failures)
        self._addresses.add(address, now)

    def succeeded(self, email: str, address: str) -> None:
        self._pairs.pop((email, address), None)


class SignUpLimiter:
    def __init__(self, sign_ups: int, window_seconds: float) -> None:
        self._addresses = SlidingWindow(sign_ups, window_seconds)

    def attempt(self, address: str) -> None:
        """Count one sign-up from ``address``, or refuse it (429) past the allowance."""
        now = time.monotonic()
        retry = self._addresses.retry_after(address, now)
        if retry is not None:
            raise problems.too_many_requests("Too many sign-ups from this address; try again later.", retry)
        self._addresses.add(address, now)
