"""A read cache that writes invalidate: the caller behind a token, an organization.

Every request needs both, and they change rarely (a sign-out, a membership change, an
organization deleted), always through a write that records an activity. So the owner
clears the cache when such an activity commits in this process, and again when any
process's activity reaches this process's log tailer. Entries also expire after
``ttl`` seconds, a bound on staleness should an invalidation ever be missed.

A load that started before a clear must not store what it read: it may have read the
state from before the write that caused the clear. Each clear starts a new generation,
and a load stores its result only if the generation it started in is still current.
Misses are never stored, so something created a moment ago is found at once.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class ReadCache(Generic[K, V]):
    def __init__(
        self, *, max_entries: int = 10_000, ttl: float = 30.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_entries = max_entries
        self.ttl = ttl
        self._clock = clock
        self._entries: dict[K, tuple[float, V]] = {}
        self._generation = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def generation(self) -> int:
        """Moves on at every :meth:`clear`: what was read in an earlier one may be stale."""
        return self._generation

    def get(self, key: K) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, value = entry
        if expires <= self._clock():
            del self._entries[key]
            return None
        return value

    async def get_or_load(self, key: K, load: Callable[[], Awaitable[V | None]]) -> V | None:
        """The cached value, or what ``load()`` reads (kept unless a clear came meanwhile)."""
        value = self.get(key)
        if value is not None:
            return value
        generation = self._generation
        value = await load()
        if value is not None and generation == self._generation:
            if len(self._entries) >= self.max_entries:
                # Oldest first: dicts keep insertion order.
                del self._entries[next(iter(self._entries))]
            self._entries[key] = (self._clock() + self.ttl, value)
        return value

    def clear(self) -> None:
        self._entries.clear()
        self._generation += 1
