"""Catch-up's last page and the ``offset`` frame: a small complete last page goes out in one
write with the offset frame (after the stream went live), a bigger one first, on its own,
while the stream still catches up; and a go-live refused (deliveries overflowed while
catch-up ran) reads the log again without losing or repeating an activity."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import orjson

from syncstream.stream.catchup import JOIN_LAST_PAGE_BYTES, CatchUpPage, replay
from syncstream.stream.frames import change_frame, offset_frame
from syncstream.stream.sse import SSEParser
from syncstream.stream.subscriber import Subscriber

WAIT = 10  # seconds: a total deadline for a whole replay


def frame_of_size(activity_id: int, size: int) -> bytes:
    """A change frame of exactly ``size`` bytes."""
    base = len(change_frame(activity_id, b'""'))
    frame = change_frame(activity_id, b'"' + b"x" * (size - base) + b'"')
    assert len(frame) == size
    return frame


class Log:
    """A fake log for ``fetch_page``: frames by ID, read ``page_size`` at a time."""

    def __init__(self, frames: dict[int, bytes], page_size: int) -> None:
        self.frames = frames
        self.page_size = page_size
        self.reads: list[int] = []

    async def fetch_page(self, after: int) -> CatchUpPage:
        self.reads.append(after)
        ids = sorted(i for i in self.frames if i > after)
        taken = ids[: self.page_size]
        return CatchUpPage(
            [(i, self.frames[i]) for i in taken],
            taken[-1] if taken else after,
            complete=len(ids) <= self.page_size,
        )


async def collect(chunks: AsyncIterator[bytes], sub: Subscriber) -> list[tuple[bytes, bool]]:
    """Each chunk replay yields, with whether the subscriber was live when it came."""
    out = []
    async with asyncio.timeout(WAIT):
        async for chunk in chunks:
            out.append((chunk, sub.live))
    return out


def events(data: bytes) -> list[tuple[str | None, str | None, str]]:
    return [(e.event, e.id, e.data) for e in SSEParser().feed(data)]


async def test_a_small_complete_last_page_is_one_write_ending_with_the_offset_frame() -> None:
    sub = Subscriber(index_key=None, cursor=0)
    log = Log({i: change_frame(i, b'{"n":%d}' % i) for i in (1, 2, 4)}, page_size=10)
    chunks = await collect(replay(sub, log.fetch_page, None), sub)
    assert len(chunks) == 1
    chunk, live = chunks[0]
    assert live, "written once the stream is live"
    assert chunk == log.frames[1] + log.frames[2] + log.frames[4] + offset_frame(4)
    assert chunk.endswith(offset_frame(4))
    parsed = events(chunk)
    assert [e for e, _, _ in parsed] == ["change", "change", "change", "offset"]
    assert [i for e, i, _ in parsed if e == "change"] == ["1", "2", "4"]
    assert sub.cursor == 4
    assert log.reads == [0]


async def test_only_the_last_page_is_joined_with_the_offset_frame() -> None:
    sub = Subscriber(index_key=None, cursor=0)
    log = Log({i: change_frame(i, b"{}") for i in range(1, 6)}, page_size=2)
    chunks = await collect(replay(sub, log.fetch_page, None), sub)
    assert [live for _, live in chunks] == [False, False, True]
    assert [c for c, _ in chunks] == [
        log.frames[1] + log.frames[2],
        log.frames[3] + log.frames[4],
        log.frames[5] + offset_frame(5),
    ]
    assert log.reads == [0, 2, 4]


async def test_nothing_to_send_is_the_offset_frame_alone_with_the_reported_cursor() -> None:
    sub = Subscriber(index_key=None, cursor=7)
    log = Log({}, page_size=10)
    chunks = await collect(replay(sub, log.fetch_page, 7), sub)
    assert chunks == [(offset_frame(7), True)]


async def test_a_last_page_of_exactly_the_join_size_is_joined() -> None:
    sub = Subscriber(index_key=None, cursor=0)
    log = Log({1: frame_of_size(1, JOIN_LAST_PAGE_BYTES)}, page_size=10)
    chunks = await collect(replay(sub, log.fetch_page, None), sub)
    assert chunks == [(log.frames[1] + offset_frame(1), True)]


async def test_a_bigger_last_page_is_written_before_going_live_then_the_offset_frame() -> None:
    sub = Subscriber(index_key=None, cursor=0)
    log = Log({1: change_frame(1, b"{}"), 2: frame_of_size(2, JOIN_LAST_PAGE_BYTES)}, page_size=10)
    chunks = await collect(replay(sub, log.fetch_page, None), sub)
    assert chunks == [
        (log.frames[1] + log.frames[2], False),  # still catching up while it is written
        (offset_frame(2), True),
    ]


async def test_deliveries_held_during_catch_up_follow_the_joined_write() -> None:
    sub = Subscriber(index_key=None, cursor=0, max_queued=100)
    log = Log({1: change_frame(1, b"{}"), 2: change_frame(2, b"{}")}, page_size=10)
    replaying = replay(sub, log.fetch_page, None)
    # Routed while catch-up ran: 2 again (read by catch-up too) and 3 (newer).
    sub.deliver(2, change_frame(2, b"{}"))
    sub.deliver(3, change_frame(3, b"{}"))
    chunks = await collect(replaying, sub)
    assert chunks == [(log.frames[1] + log.frames[2] + offset_frame(2), True)]
    assert sub.take_all() == change_frame(3, b"{}")  # once, after the offset frame


async def test_a_refused_go_live_reads_again_and_loses_nothing() -> None:
    sub = Subscriber(index_key=None, cursor=0, max_queued=3)
    frames = {i: change_frame(i, b'{"n":%d}' % i) for i in (1, 2, 3)}
    log = Log(frames, page_size=10)
    fetched = log.fetch_page
    overflowed = False

    async def fetch_page(after: int) -> CatchUpPage:
        nonlocal overflowed
        page = await fetched(after)
        if not overflowed:
            # Committed and routed right after this read: more than the subscriber holds
            # while it is not live, so they are dropped and go_live() must say so.
            overflowed = True
            for i in range(4, 9):
                log.frames[i] = change_frame(i, b'{"n":%d}' % i)
                sub.deliver(i, log.frames[i])
        return page

    chunks = await collect(replay(sub, fetch_page, None), sub)
    assert log.reads == [0, 3], "the log is read again after the refused go-live"
    assert [live for _, live in chunks] == [False, True]
    assert chunks[0][0] == frames[1] + frames[2] + frames[3]
    assert chunks[1][0] == b"".join(log.frames[i] for i in range(4, 9)) + offset_frame(8)
    sent = [int(i) for e, i, _ in events(b"".join(c for c, _ in chunks)) if e == "change" and i]
    assert sent == list(range(1, 9))  # every activity once, in order
    offsets = [orjson.loads(d) for e, _, d in events(chunks[-1][0]) if e == "offset"]
    assert offsets == [{"cursor": "8"}]
    assert sub.live
    assert sub.take_all() == b""  # the dropped deliveries are not sent a second time


async def test_a_refused_go_live_on_a_big_last_page_writes_it_once() -> None:
    sub = Subscriber(index_key=None, cursor=0, max_queued=1)
    big = frame_of_size(1, JOIN_LAST_PAGE_BYTES + 1)
    log = Log({1: big}, page_size=10)
    fetched = log.fetch_page

    async def fetch_page(after: int) -> CatchUpPage:
        page = await fetched(after)
        if after == 0:
            for i in (2, 3):
                log.frames[i] = change_frame(i, b"{}")
                sub.deliver(i, log.frames[i])
        return page

    chunks = await collect(replay(sub, fetch_page, None), sub)
    assert chunks == [(big, False), (log.frames[2] + log.frames[3] + offset_frame(3), True)]
    assert log.reads == [0, 1]
