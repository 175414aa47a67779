"""Catch-up holds one page at a time: the next page of the log is read only once the
previous one was written, and a write waits while the transport is paused (uvicorn's
``send`` waits for the drain). So what a stream pins during catch-up is one page, which
the log read bounds by bytes (tests/activities/test_bounded_reads.py)."""

from __future__ import annotations

import asyncio
from typing import Any

from syncstream.stream.catchup import CatchUpPage, replay
from syncstream.stream.frames import change_frame
from syncstream.stream.response import SSEResponse
from syncstream.stream.subscriber import Subscriber


async def test_the_next_page_is_read_only_after_the_last_was_written() -> None:
    sub = Subscriber(index_key=None, cursor=0)
    reads: list[int] = []

    async def fetch_page(after: int) -> CatchUpPage:
        reads.append(after)
        frames = [(after + 1, change_frame(after + 1, b"{}"))]
        return CatchUpPage(frames, after + 1, complete=after + 1 >= 3)

    written: list[bytes] = []
    drained = asyncio.Event()  # a transport paused until the test lets it drain
    blocked = asyncio.Event()
    finished = asyncio.Event()  # the offset frame is out: catch-up is over

    async def send(message: Any) -> None:
        body = message.get("body", b"")
        if b"event: change" in body and not drained.is_set():
            blocked.set()
            await drained.wait()
        written.append(body)
        if b"event: offset" in body:
            finished.set()

    async def receive() -> Any:
        await asyncio.Event().wait()  # the client never leaves; the stream is closed below

    response = SSEResponse(
        sub, replay(sub, fetch_page, None), on_open=lambda s: None, on_close=lambda s: None, retry_ms=1000
    )
    task = asyncio.create_task(response.run(send, receive))
    async with asyncio.timeout(10):
        await blocked.wait()
    assert reads == [0], "while page 1 waits on the socket, page 2 is not read"
    drained.set()
    async with asyncio.timeout(10):
        await finished.wait()
    assert reads == [0, 1, 2]
    sub.close("ended")
    async with asyncio.timeout(10):
        await task
    assert b"".join(written).count(b"event: change") == 3
