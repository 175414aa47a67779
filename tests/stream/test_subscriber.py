"""The subscriber's outbox and the catch-up hand-over, driven by hand."""

from __future__ import annotations

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st

from syncstream.stream.catchup import CatchUpPage, replay
from syncstream.stream.helpers import PING_FRAME, keep_alive
from syncstream.stream.subscriber import Subscriber


def frame(i: int) -> bytes:
    return b";f%d;" % i


def test_live_delivery_skips_what_was_already_sent() -> None:
    sub = Subscriber(index_key="k", cursor=5)
    assert sub.go_live()
    for i in (3, 5, 6, 6, 7):
        sub.deliver(i, frame(i))
    assert sub.take_all() == b";f6;;f7;"
    assert sub.cursor == 7


def test_overflow_cuts_with_an_error_frame_and_calls_the_hook() -> None:
    cut: list[Subscriber] = []
    sub = Subscriber(index_key=None, cursor=0, max_queued=3)
    sub.on_overflow = cut.append
    sub.go_live()
    for i in range(1, 5):
        sub.deliver(i, frame(i))
    assert sub.closed
    assert sub.close_reason == "slow_consumer"
    assert cut == [sub]
    data = sub.take_all()
    assert data is not None
    assert data.startswith(b"event: error\n")
    assert b'"slow_consumer"' in data
    assert sub.take_all() is None  # closed and drained


def test_close_keeps_queued_frames_then_the_final_one() -> None:
    sub = Subscriber(index_key=None, cursor=0)
    sub.go_live()
    sub.deliver(1, frame(1))
    sub.close("forbidden", b"bye;")
    sub.deliver(2, frame(2))
    assert sub.take_all() == b";f1;bye;"
    assert sub.take_all() is None


async def test_wait_wakes_on_delivery() -> None:
    sub = Subscriber(index_key=None, cursor=0)
    sub.go_live()
    waiter = asyncio.ensure_future(sub.wait())
    await asyncio.sleep(0)
    assert not waiter.done()
    sub.deliver(1, frame(1))
    await waiter
    assert sub.take_all() == frame(1)


async def test_keep_alive_pings_only_idle_live_subscribers() -> None:
    idle, busy, catching_up = (Subscriber(index_key=None, cursor=0) for _ in range(3))
    idle.go_live()
    busy.go_live()
    idle.last_write -= 10
    catching_up.last_write -= 10
    pinger = asyncio.ensure_future(keep_alive(lambda: [idle, busy, catching_up], 4.0))
    waiter = asyncio.ensure_future(idle.wait())
    await waiter  # woken by the first sweep's ping
    pinger.cancel()
    assert idle.take_all() == PING_FRAME
    assert busy.take_all() == b""
    assert catching_up.queued == 0


class FakeLog:
    """A log of IDs (some invisible to the subscriber) read in pages."""

    def __init__(self, visible: list[int], newest: int) -> None:
        self.visible = visible
        self.newest = newest

    async def fetch(self, after: int, page_size: int) -> CatchUpPage:
        rows = list(range(after + 1, self.newest + 1))[:page_size]
        frames = [(i, frame(i)) for i in rows if i in self.visible]
        return CatchUpPage(frames, rows[-1] if rows else after, complete=len(rows) < page_size)


async def drain(sub: Subscriber, log: FakeLog, page_size: int, during: list[int]) -> list[bytes]:
    """Run catch-up; deliver ``during`` (live arrivals) between pages."""
    arrivals = iter(during)

    async def fetch(after: int) -> CatchUpPage:
        page = await log.fetch(after, page_size)
        for i in arrivals:  # commits up to i, routed in ID order like the log tailer does
            for j in range(log.newest + 1, i + 1):
                if j in log.visible:
                    sub.deliver(j, frame(j))
            log.newest = max(log.newest, i)
            break
        return page

    return [chunk async for chunk in replay(sub, fetch, None)]


@settings(max_examples=200, deadline=None)
@given(
    newest=st.integers(0, 40),
    hidden=st.sets(st.integers(1, 80)),
    live=st.lists(st.integers(1, 80), max_size=30),
    page_size=st.integers(1, 7),
    start=st.integers(0, 10),
    max_queued=st.integers(1, 5),
)
def test_catch_up_then_live_is_gapless_and_exactly_once(
    newest: int, hidden: set[int], live: list[int], page_size: int, start: int, max_queued: int
) -> None:
    """Whatever interleaving of catch-up pages and live arrivals, every visible ID after
    the start arrives exactly once and in order."""
    start = min(start, newest)
    live_ids = sorted({i for i in live if i > newest})
    visible = [i for i in range(1, 81) if i not in hidden]
    log = FakeLog(visible, newest)
    sub = Subscriber(index_key=None, cursor=start, max_queued=max_queued + 100)
    sub.max_queued = max_queued  # the pending bound during catch-up: overflow forces a re-read

    async def run() -> bytes:
        chunks = await drain(sub, log, page_size, live_ids)
        sub.max_queued = 1000
        for i in range(1, max([newest, *live_ids]) + 1):  # everything routed again: no duplicates
            if i in visible:
                sub.deliver(i, frame(i))
        tail = sub.take_all() or b""
        return b"".join(chunks) + tail

    data = asyncio.run(run())
    changes = [int(p[1:]) for p in data.split(b";") if p.startswith(b"f")]
    expected = [i for i in visible if start < i <= max([newest, *live_ids])]
    assert changes == expected
    assert data.count(b"event: offset") == 1
