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

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

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
        #: The load in flight per key, with the generation it started in (at most one
        #: each: bounded by the keys being loaded at once).
        self._loading: dict[K, tuple[int, asyncio.Future[V | None]]] = {}

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
        """The cached value, or what ``load()`` reads (kept unless a clear came meanwhile).

        Concurrent misses of one key in one generation share one load: after a restart
        every client comes back at once, and a user's many tabs (or a thousand streams on
        one token) would otherwise each read the same row before the first read is kept.
        A miss that comes after a clear starts a load of its own, as it must not be
        answered from a read that may predate the write behind the clear.
        """
        value = self.get(key)
        if value is not None:
            return value
        generation = self._generation
        flight = self._loading.get(key)
        if flight is None or flight[0] != generation:
            task = asyncio.ensure_future(self._load(key, generation, load))
            # Its failure is its callers' to see; with all of them gone, nobody's to log.
            task.add_done_callback(_retrieved)
            flight = self._loading[key] = (generation, task)
        # Shielded: one caller giving up (its client went away) does not end the load
        # the others wait for.
        return await asyncio.shield(flight[1])

    async def _load(self, key: K, generation: int, load: Callable[[], Awaitable[V | None]]) -> V | None:
        try:
            value = await load()
        finally:
            flight = self._loading.get(key)
            if flight is not None and flight[0] == generation:
                del self._loading[key]
        if value is not None and generation == self._generation:
            if len(self._entries) >= self.max_entries:
                # Oldest first: dicts keep insertion order.
                del self._entries[next(iter(self._entries))]
            self._entries[key] = (self._clock() + self.ttl, value)
        return value

    def clear(self) -> None:
        self._entries.clear()
        self._generation += 1


def _retrieved(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()
