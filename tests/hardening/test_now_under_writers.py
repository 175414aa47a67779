"""``offset=now`` under concurrent writers, end to end (issue 11, item 9).

16 writers commit while streams open with ``offset=now`` in the middle of the burst, on
both streams and both databases. Every stream's ``offset`` frame names a cursor; after
it, the stream must deliver exactly the activities above that cursor that it may see,
each once, in order, and nothing at or below it (a client that dropped right after the
``offset`` frame resumes after the cursor and must not have missed anything).

The interleavings themselves are driven one by one in tests/modules/test_now_interleavings.py;
this is the same promise with real sockets, real commits and the real tailer.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from harness import Api, ServerProcess, User

from .support import (
    BACKENDS,
    RawStream,
    admin_user,
    assert_exactly_once_in_order,
    everything,
    fresh_database,
    running_server,
    sse_request,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")

WRITERS = 16
WRITES_EACH = 8
ROUNDS = 3
STREAMS_PER_ROUND = 8
END = "end"


class Offsets(RawStream):
    """A raw stream that also remembers how many changes preceded its ``offset`` frame."""

    changes_before_offset: int | None = None

    def _on_events(self, events: list[Any]) -> None:
        for event in events:
            super()._on_events([event])
            if event.event == "offset" and self.changes_before_offset is None:
                self.changes_before_offset = len(self.changes)


@pytest_asyncio.fixture(scope="module", loop_scope="session", params=BACKENDS)
async def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[ServerProcess, User, str]]:
    directory = tmp_path_factory.mktemp("now-writers")
    async with fresh_database(request.param, directory) as url, running_server(url) as server:
        api = Api(server.url)
        admin = await admin_user(server, api)  # writes pages; also owns the org
        org = await api.ok(
            "POST", "/organizations", 201, json={"name": "Now", "slug": "now"}, token=admin.token
        )
        await api.aclose()
        yield server, admin, org["id"]


def target(stream: str, org_id: str) -> tuple[str, str, Any]:
    """The stream's path, where to write, and a body for a write named ``name``."""
    if stream == "pages":
        return "/pages/stream", "/pages", lambda name: {"title": name, "content": "c"}
    return (
        f"/organizations/{org_id}/sync/stream",
        f"/organizations/{org_id}/attachments",
        lambda name: {"name": name},
    )


def named(change: Any) -> str:
    data = change.message["data"]
    return str(data.get("title", data.get("name")))


@pytest.mark.parametrize("stream", ["pages", "org"])
async def test_no_stream_gets_an_activity_at_or_below_its_now_cursor(
    server: tuple[ServerProcess, User, str], stream: str
) -> None:
    process, admin, org_id = server
    path, write_path, body = target(stream, org_id)
    api = Api(process.url, admin.token)
    headers = {"Authorization": f"Bearer {admin.token}"}
    loop = asyncio.get_running_loop()

    async def writer(index: int, round_: int) -> None:
        for n in range(WRITES_EACH):
            await api.ok("POST", write_path, 201, json=body(f"r{round_}-w{index}-{n}"))

    for round_ in range(ROUNDS):
        writers = [asyncio.create_task(writer(i, round_)) for i in range(WRITERS)]
        streams: list[Offsets] = []
        for _ in range(STREAMS_PER_ROUND):
            await asyncio.sleep(0)  # let the burst go on between opens; the order is free
            request = sse_request(process.port, f"{path}?offset=now&live=sse", headers)
            opened = Offsets(request)
            await loop.create_connection(lambda opened=opened: opened, "127.0.0.1", process.port)  # type: ignore[misc]
            streams.append(opened)
        await asyncio.gather(*writers)
        marker = f"{END}-{round_}"
        await api.ok("POST", write_path, 201, json=body(marker))
        truth = [(int(m["activityId"])) for m in await everything(api, path)]
        for s in streams:
            await s.until(lambda s, marker=marker: any(named(c) == marker for c in s.changes))
            [offset] = s.offsets
            cursor = int(offset["cursor"] or 0)
            assert s.changes_before_offset is not None
            after = [c.id for c in s.changes[s.changes_before_offset :]]
            assert all(i > cursor for i in after), f"after offset {cursor}: {after[:10]}"
            assert_exactly_once_in_order([c.id for c in s.changes])
            upto = after[-1]
            assert after == [i for i in truth if cursor < i <= upto], "missed or extra activities"
            s.abort()
    await api.aclose()
