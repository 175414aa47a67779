"""The test harness's own promise: a stream read ends, even against a stream that pings for ever.

A read that restarted its timeout at every ping would wait for ever on a server that only
pings (one that never sends its ``offset`` frame, or never delivers a change); the test would
hang until pytest-timeout. These reads must fail within their deadline instead.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx
import pytest

from harness import Stream, StreamDeadline

#: Far beyond the reads' own deadlines: reached only if a read waits for ever.
OUTER_SECONDS = 10.0


@contextlib.asynccontextmanager
async def pinging_server() -> AsyncIterator[str]:
    """An HTTP server whose every response is an SSE stream of pings, every 50 ms, for ever."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            await reader.readuntil(b"\r\n\r\n")
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
            )
            while True:
                frame = b"event: ping\ndata: pong\n\n"
                writer.write(b"%x\r\n%s\r\n" % (len(frame), frame))
                await writer.drain()
                await asyncio.sleep(0.05)  # the server under test's ping interval, not a wait

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()


async def test_next_fails_within_its_deadline_on_a_stream_that_only_pings() -> None:
    async with (
        pinging_server() as url,
        httpx.AsyncClient(base_url=url) as client,
        Stream(client, "/stream", {}) as stream,
        asyncio.timeout(OUTER_SECONDS),
    ):
        with pytest.raises(StreamDeadline, match="pings do not count"):
            await stream.next(wait_seconds=0.5)


async def test_until_offset_fails_within_its_deadline_on_a_stream_that_only_pings() -> None:
    async with (
        pinging_server() as url,
        httpx.AsyncClient(base_url=url) as client,
        Stream(client, "/stream", {}) as stream,
        asyncio.timeout(OUTER_SECONDS),
    ):
        with pytest.raises(StreamDeadline, match="offset frame"):
            await stream.until_offset(wait_seconds=0.5)
