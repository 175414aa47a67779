"""Test helpers for doorbells: a recording ring handler and condition waits."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable

from syncstream.activities.transports import Doorbell, doorbell_from_url

WAIT = 15.0
"""Upper bound for anything to happen; tests wait for events, this only stops a hung test."""


class Recorder:
    """A ring handler that remembers what it was told and lets a test wait for it."""

    def __init__(self) -> None:
        self.rings: list[int | None] = []
        self._changed = asyncio.Event()

    def __call__(self, activity_id: int | None) -> None:
        self.rings.append(activity_id)
        self._changed.set()

    @property
    def ids(self) -> set[int]:
        return {ring for ring in self.rings if ring is not None}

    async def wait_for(self, what: str, predicate: Callable[[list[int | None]], bool]) -> None:
        """Wait until `predicate(rings)` holds; fail with `what` and what was heard if it never does."""
        try:
            async with asyncio.timeout(WAIT):
                while not predicate(self.rings):
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            raise AssertionError(f"never heard {what} within {WAIT} s; heard {self.rings[-20:]}") from None

    async def wait_for_ids(self, ids: Iterable[int]) -> None:
        wanted = set(ids)
        await self.wait_for(f"activities {sorted(wanted)[:10]}...", lambda _rings: wanted <= self.ids)

    async def wait_for_unknown(self) -> None:
        """Wait for a "go and look" (None)."""
        await self.wait_for("a 'go and look' (None)", lambda rings: None in rings)


async def eventually(what: str, condition: Callable[[], bool]) -> None:
    """Wait for a state that has no event to await (such as `healthy`), by checking it often."""
    try:
        async with asyncio.timeout(WAIT):
            while not condition():  # noqa: ASYNC110 - a property such as `healthy` has no event to await
                await asyncio.sleep(0.01)
    except TimeoutError:
        raise AssertionError(f"{what} did not happen within {WAIT} s") from None


class Bells:
    """Starts doorbells for one test, each with its own Recorder, and closes them all afterwards."""

    def __init__(self, url: str, channel: str) -> None:
        self.url = url
        self.channel = channel
        self._started: list[Doorbell] = []

    async def start(
        self, bell: Doorbell | None = None, *, url: str | None = None, recorder: Recorder | None = None
    ) -> tuple[Doorbell, Recorder]:
        """Start `bell`, or a bell from `url` (default: the test's bus) on the test's channel."""
        if bell is None:
            bell = doorbell_from_url(url or self.url, channel=self.channel)
        recorder = recorder or Recorder()
        self._started.append(bell)
        # start() must return promptly whatever the state of the bus; the bound only catches a hang.
        await asyncio.wait_for(bell.start(recorder), WAIT)
        return bell, recorder

    async def close(self) -> None:
        for bell in self._started:
            await bell.close()
