"""The read cache's single flight: concurrent misses of one key share one load, a miss
after a clear loads on its own, and one caller giving up or a load failing is handled
for every caller alike."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

import pytest

from syncstream.db.read_cache import ReadCache

WAIT = 10  # seconds: a total deadline for every wait below


class Gated:
    """A loader that counts its calls and waits for the test to let it answer."""

    def __init__(self, value: str | None = "value", error: Exception | None = None) -> None:
        self.value = value
        self.error = error
        self.calls = 0
        self.started = asyncio.Event()
        self.release = asyncio.Event()

    async def __call__(self) -> str | None:
        self.calls += 1
        self.started.set()
        await self.release.wait()
        if self.error is not None:
            raise self.error
        return self.value


async def gather(*aws: Awaitable[str | None]) -> list[str | BaseException | None]:
    async with asyncio.timeout(WAIT):
        return list(await asyncio.gather(*aws, return_exceptions=True))


async def test_concurrent_misses_share_one_load() -> None:
    cache: ReadCache[str, str] = ReadCache()
    load = Gated()
    waiters = [asyncio.create_task(cache.get_or_load("k", load)) for _ in range(20)]
    async with asyncio.timeout(WAIT):
        await load.started.wait()
    assert not any(t.done() for t in waiters)
    load.release.set()
    assert await gather(*waiters) == ["value"] * 20
    assert load.calls == 1
    assert cache.get("k") == "value"
    # And the next caller is a hit.
    other = Gated("other")
    assert await cache.get_or_load("k", other) == "value"
    assert other.calls == 0


async def test_different_keys_load_on_their_own() -> None:
    cache: ReadCache[str, str] = ReadCache()
    first, second = Gated("a"), Gated("b")
    a = asyncio.create_task(cache.get_or_load("a", first))
    b = asyncio.create_task(cache.get_or_load("b", second))
    async with asyncio.timeout(WAIT):
        await first.started.wait()
        await second.started.wait()
    first.release.set()
    second.release.set()
    assert await gather(a, b) == ["a", "b"]
    assert (first.calls, second.calls) == (1, 1)


async def test_a_miss_after_a_clear_loads_again_and_the_stale_load_is_not_kept() -> None:
    cache: ReadCache[str, str] = ReadCache()
    stale = Gated("read before the write")
    early = asyncio.create_task(cache.get_or_load("k", stale))
    async with asyncio.timeout(WAIT):
        await stale.started.wait()
    cache.clear()  # a write that changes "k" committed while the first load was reading
    fresh = Gated("read after the write")
    late = asyncio.create_task(cache.get_or_load("k", fresh))
    async with asyncio.timeout(WAIT):
        await fresh.started.wait()  # it did not join the load that started before the clear
    stale.release.set()
    assert await gather(early) == ["read before the write"]  # the caller that read it uses it
    assert cache.get("k") is None  # but it is not kept
    fresh.release.set()
    assert await gather(late) == ["read after the write"]
    assert cache.get("k") == "read after the write"
    assert (stale.calls, fresh.calls) == (1, 1)


async def test_a_miss_after_a_clear_is_kept_even_when_the_stale_load_ends_last() -> None:
    cache: ReadCache[str, str] = ReadCache()
    stale = Gated("stale")
    early = asyncio.create_task(cache.get_or_load("k", stale))
    async with asyncio.timeout(WAIT):
        await stale.started.wait()
    cache.clear()
    fresh = Gated("fresh")
    late = asyncio.create_task(cache.get_or_load("k", fresh))
    async with asyncio.timeout(WAIT):
        await fresh.started.wait()
    fresh.release.set()
    assert await gather(late) == ["fresh"]
    stale.release.set()
    assert await gather(early) == ["stale"]
    assert cache.get("k") == "fresh"  # the older load, ending last, did not overwrite it
    # A third caller in the new generation is a hit: nothing is left loading.
    third = Gated("third")
    assert await cache.get_or_load("k", third) == "fresh"
    assert third.calls == 0


async def test_a_caller_that_gives_up_does_not_end_the_load_of_the_others() -> None:
    cache: ReadCache[str, str] = ReadCache()
    load = Gated()
    waiters = [asyncio.create_task(cache.get_or_load("k", load)) for _ in range(3)]
    async with asyncio.timeout(WAIT):
        await load.started.wait()
    waiters[0].cancel()
    with pytest.raises(asyncio.CancelledError):
        async with asyncio.timeout(WAIT):
            await waiters[0]
    load.release.set()
    assert await gather(*waiters[1:]) == ["value", "value"]
    assert load.calls == 1
    assert cache.get("k") == "value"


async def test_the_only_caller_giving_up_still_keeps_the_value() -> None:
    cache: ReadCache[str, str] = ReadCache()
    load = Gated()
    waiter = asyncio.create_task(cache.get_or_load("k", load))
    async with asyncio.timeout(WAIT):
        await load.started.wait()
    waiter.cancel()
    await gather(waiter)
    assert waiter.cancelled()
    load.release.set()
    # The load goes on in its own task: a caller arriving now joins it.
    again = Gated("again")
    assert await gather(cache.get_or_load("k", again)) == ["value"]
    assert again.calls == 0


async def test_a_failed_load_fails_every_caller_and_the_next_loads_again() -> None:
    cache: ReadCache[str, str] = ReadCache()
    load = Gated(error=ConnectionError("database down"))
    waiters = [asyncio.create_task(cache.get_or_load("k", load)) for _ in range(4)]
    async with asyncio.timeout(WAIT):
        await load.started.wait()
    load.release.set()
    results = await gather(*waiters)
    assert all(isinstance(r, ConnectionError) for r in results), results
    assert load.calls == 1
    assert cache.get("k") is None
    retry = Gated("back")
    retry.release.set()
    assert await gather(cache.get_or_load("k", retry)) == ["back"]
    assert retry.calls == 1


async def test_a_miss_is_shared_but_not_kept() -> None:
    cache: ReadCache[str, str] = ReadCache()
    load = Gated(value=None)
    waiters = [asyncio.create_task(cache.get_or_load("k", load)) for _ in range(3)]
    async with asyncio.timeout(WAIT):
        await load.started.wait()
    load.release.set()
    assert await gather(*waiters) == [None, None, None]
    assert load.calls == 1
    created = Gated("created meanwhile")
    created.release.set()
    assert await gather(cache.get_or_load("k", created)) == ["created meanwhile"]
