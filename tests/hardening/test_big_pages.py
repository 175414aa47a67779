"""One anonymous request must not take hundreds of MB (issue 11, item 4).

An admin edits one 500 KiB page many times; then anonymous clients read the public pages
stream from ``-1``. Before, one JSON page of ``limit=1000`` returned every edit at once
(102 MB for 200 edits) and an SSE catch-up read and wrote 1,000 of them as one write.
Now a JSON page and each SSE catch-up write hold at most ``SYNCSTREAM_PAGE_BYTES`` of
activities (one, when a single one is larger), and paging still delivers everything,
once, in order. Memory is asserted on what the server puts in one page or one write,
not on its RSS.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
import pytest_asyncio

from harness import Api, ServerProcess
from syncstream.stream.sse import SSEParser

from .support import BACKENDS, admin_user, everything, fresh_database, running_server, split_head

pytestmark = pytest.mark.asyncio(loop_scope="session")

PAGE_BYTES = 1024 * 1024  # the default of SYNCSTREAM_PAGE_BYTES
CONTENT = 500 * 1024
EDITS = 24


@pytest_asyncio.fixture(scope="module", loop_scope="session", params=BACKENDS)
async def big_log(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[ServerProcess, list[dict[str, Any]]]]:
    """A server whose log holds a 500 KiB page created and edited ``EDITS`` times, and
    that log as JSON mode pages it (the truth streams are compared with)."""
    directory = tmp_path_factory.mktemp("big-pages")
    async with fresh_database(request.param, directory) as url, running_server(url) as server:
        api = Api(server.url)
        admin = await admin_user(server, api)
        page = await api.ok(
            "POST", "/pages", 201, json={"title": "Big", "content": "0" * CONTENT}, token=admin.token
        )
        for n in range(1, EDITS + 1):
            content = f"{n:04d}" + "x" * (CONTENT - 4)
            await api.ok("PATCH", f"/pages/{page['id']}", json={"content": content}, token=admin.token)
        truth = await everything(api, "/pages/stream")
        await api.aclose()
        assert len(truth) == EDITS + 1
        yield server, truth


async def test_a_json_page_is_bounded_by_bytes_and_paging_gets_everything(
    big_log: tuple[ServerProcess, list[dict[str, Any]]],
) -> None:
    server, truth = big_log
    api = Api(server.url)
    response = await api.request("GET", "/pages/stream", params={"offset": "-1", "limit": "1000"})
    assert response.status_code == 200
    assert len(response.content) <= PAGE_BYTES, "one anonymous page is bounded by bytes"
    first = response.json()
    assert 1 <= len(first["activities"]) < EDITS + 1
    assert first["hasMore"] is True
    assert first["cursor"] == first["activities"][-1]["activityId"]

    got, cursor, pages = [], "-1", 0
    while True:
        response = await api.request("GET", "/pages/stream", params={"offset": cursor, "limit": "1000"})
        assert len(response.content) <= PAGE_BYTES
        page = response.json()
        got += page["activities"]
        pages += 1
        if not page["hasMore"]:
            break
        cursor = page["cursor"]
    assert [m["activityId"] for m in got] == [m["activityId"] for m in truth]
    assert got == truth
    assert pages >= (EDITS + 1) // 2
    await api.aclose()


async def test_a_single_activity_over_the_bound_still_comes_alone(
    big_log: tuple[ServerProcess, list[dict[str, Any]]],
) -> None:
    """limit=1 is always at least one: a client always progresses, however big an activity."""
    server, truth = big_log
    api = Api(server.url)
    page = await api.ok("GET", "/pages/stream", params={"offset": truth[3]["activityId"], "limit": "1"})
    assert [m["activityId"] for m in page["activities"]] == [truth[4]["activityId"]]
    assert page["hasMore"] is True
    await api.aclose()


class ChunkedSSE(asyncio.Protocol):
    """An SSE response read off a raw socket, keeping each HTTP chunk the server wrote (one
    chunk per write: catch-up writes a page per chunk)."""

    def __init__(self, request: bytes) -> None:
        self.request = request
        self.head = b""
        self.status = 0
        self.buffer = b""
        self.chunks: list[bytes] = []
        self.events: list[Any] = []
        self.parser = SSEParser()
        self.progress = asyncio.Event()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        transport.write(self.request)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        if not self.status:
            head = split_head(self.head + data)
            if head is None:
                self.head += data
                return
            self.status, _, data = head
        self.buffer += data
        while True:
            eol = self.buffer.find(b"\r\n")
            if eol < 0:
                break
            size = int(self.buffer[:eol], 16)
            if len(self.buffer) < eol + 2 + size + 2:
                break
            payload = self.buffer[eol + 2 : eol + 2 + size]
            self.buffer = self.buffer[eol + 2 + size + 2 :]
            self.chunks.append(payload)
            self.events += self.parser.feed(payload)
        self.progress.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self.progress.set()

    async def until_offset(self, within: float = 60.0) -> None:
        async with asyncio.timeout(within):
            while not any(e.event == "offset" for e in self.events):
                assert self.transport is not None
                assert not self.transport.is_closing(), f"stream ended (status {self.status})"
                self.progress.clear()
                await self.progress.wait()


async def test_sse_catch_up_writes_pages_bounded_by_bytes(
    big_log: tuple[ServerProcess, list[dict[str, Any]]],
) -> None:
    server, truth = big_log
    request = (
        f"GET /pages/stream?offset=-1&live=sse HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
        "Accept: text/event-stream\r\n\r\n"
    ).encode()
    loop = asyncio.get_running_loop()
    stream = ChunkedSSE(request)
    transport, _ = await loop.create_connection(lambda: stream, "127.0.0.1", server.port)
    try:
        await stream.until_offset()
    finally:
        transport.close()
    assert stream.status == 200
    catch_up = [c for c in stream.chunks if b"event: change" in c]
    assert len(catch_up) >= (EDITS + 1) // 2, "catch-up came in pages, one write each"
    assert max(map(len, catch_up)) <= PAGE_BYTES, "no catch-up write holds more than the bound"
    changes = [orjson.loads(e.data) for e in stream.events if e.event == "change"]
    assert changes == truth
    [offset] = [orjson.loads(e.data) for e in stream.events if e.event == "offset"]
    assert offset == {"cursor": truth[-1]["activityId"]}
