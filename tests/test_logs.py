"""Request IDs: echoed, generated when absent or unsafe, and carried by stream log lines."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from harness import Api, ServerProcess, Stream
from syncstream.logs import RequestIdFilter, request_id


async def test_request_id_is_echoed_or_made(api: Api) -> None:
    given = await api.request("GET", "/health", headers={"X-Request-ID": "edge-42"})
    assert given.headers["x-request-id"] == "edge-42"
    made = await api.request("GET", "/health", headers={"X-Request-ID": "bad id\twith spaces"})
    assert made.headers["x-request-id"] != "bad id\twith spaces"
    assert len(made.headers["x-request-id"]) == 16


def test_filter_names_the_current_request() -> None:
    record = logging.LogRecord("syncstream", logging.INFO, __file__, 1, "m", None, None)
    token = request_id.set("r-1")
    try:
        assert RequestIdFilter().filter(record)
    finally:
        request_id.reset(token)
    assert record.request_id == "r-1"  # type: ignore[attr-defined]


async def test_stream_lines_carry_the_request_id(tmp_path: Path) -> None:
    server = ServerProcess(database_url=f"sqlite:///{tmp_path / 'logs.db'}", log_level="info")
    await asyncio.to_thread(server.start)
    try:
        api = Api(server.url)
        async with Stream(api.client, "/pages/stream?offset=now&live=sse", {"X-Request-ID": "trace-me"}) as s:
            await s.until_offset()
            assert s.response.headers["x-request-id"] == "trace-me"
        async with asyncio.timeout(30):
            # The log file is written by another process: there is nothing to await but the file.
            while "reason=client_disconnected" not in server.log():  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        lines = [line for line in server.log().splitlines() if "stream=pages" in line]
        assert len(lines) == 2
        assert all(line.endswith("request_id=trace-me") for line in lines)
        await api.aclose()
    finally:
        await asyncio.to_thread(server.stop)
