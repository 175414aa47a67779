"""The read cache: hits, expiry, bounded size, and no stale fill across a clear."""

from __future__ import annotations

import asyncio

from syncstream.db.read_cache import ReadCache


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_a_loaded_value_is_served_from_memory_until_it_expires() -> None:
    clock = Clock()
    cache: ReadCache[str, int] = ReadCache(ttl=10, clock=clock)
    loads: list[str] = []

    async def load() -> int:
        loads.append("db")
        return 42

    assert await cache.get_or_load("k", load) == 42
    clock.now = 9.9
    assert await cache.get_or_load("k", load) == 42
    assert loads == ["db"]
    clock.now = 10.0
    assert await cache.get_or_load("k", load) == 42
    assert loads == ["db", "db"]


async def test_misses_are_not_kept() -> None:
    cache: ReadCache[str, int] = ReadCache()
    answers = iter([None, 7])

    async def load() -> int | None:
        return next(answers)

    assert await cache.get_or_load("new", load) is None
    assert await cache.get_or_load("new", load) == 7  # created meanwhile: found at once


async def test_the_oldest_entry_makes_room() -> None:
    cache: ReadCache[int, int] = ReadCache(max_entries=2)
    for key in (1, 2, 3):

        async def load(key: int = key) -> int:
            return key

        await cache.get_or_load(key, load)
    assert len(cache) == 2
    assert cache.get(1) is None
    assert cache.get(3) == 3


async def test_a_load_that_straddles_a_clear_does_not_store_what_it_read() -> None:
    cache: ReadCache[str, str] = ReadCache()
    reading = asyncio.Event()
    release = asyncio.Event()

    async def slow_load() -> str:
        reading.set()
        await release.wait()
        return "read before the write"

    pending = asyncio.create_task(cache.get_or_load("k", slow_load))
    await reading.wait()
    cache.clear()  # the write that changes "k" committed while the load was reading
    release.set()
    assert await pending == "read before the write"  # the request that read it uses it
    assert cache.get("k") is None  # but the next one reads again
