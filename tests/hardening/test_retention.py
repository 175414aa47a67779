"""Retention: after ``syncstream activities prune``, a cursor older than what is kept gets
``409 must_refetch`` — in JSON mode, in SSE mode, with ``Last-Event-ID``, and also when the
prune lands while a stream is half-way through its catch-up — never a silent gap; and a
client that then starts again from ``-1`` gets everything that is kept, and live changes.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
import pytest_asyncio

from api.support import assert_problem, create_org, run_cli
from harness import Api, ServerProcess, unique
from syncstream.activities.model import NewActivity
from syncstream.activities.transports import doorbell_from_url
from syncstream.activities.writer import ActivityWriter, WriteTransaction
from syncstream.db.engine import Database
from syncstream.stream.sse import SSEParser

from .support import (
    BACKENDS,
    Dechunker,
    admin_user,
    everything,
    fresh_database,
    open_stream,
    running_server,
    split_head,
    until,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest_asyncio.fixture(scope="module", loop_scope="session", params=BACKENDS)
async def pruned_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[ServerProcess]:
    """A server of our own: pruning the shared one would pull the floor from other suites.
    Each test prunes everything it wrote, so they can share it."""
    directory = tmp_path_factory.mktemp("retention")
    async with fresh_database(request.param, directory) as url, running_server(url) as server:
        yield server


def prune_everything_but_the_newest(database_url: str) -> int:
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    result = run_cli("activities", "prune", "--before", tomorrow, "--database-url", database_url)
    assert result.returncode == 0, result.stderr
    printed: dict[str, Any] = orjson.loads(result.stdout)
    return int(printed["prunedThrough"])


async def test_a_pruned_cursor_must_refetch_and_minus_one_starts_again(pruned_server: ServerProcess) -> None:
    api = Api(pruned_server.url)
    owner = await api.sign_up()
    admin = await admin_user(pruned_server, api)
    org = await create_org(api, owner.token)
    org_path = f"/organizations/{org['id']}/sync/stream"
    for n in range(4):
        await api.ok(
            "POST", f"/organizations/{org['id']}/attachments", 201, json={"name": f"a{n}"}, token=owner.token
        )
        await api.ok("POST", "/pages", 201, json={"title": f"p{n}", "content": "x"}, token=admin.token)
    before = {
        "org": await everything(api, org_path, owner.token),
        "pages": await everything(api, "/pages/stream"),
    }
    oldest = min(int(m["activityId"]) for m in before["org"] + before["pages"])

    pruned = await asyncio.to_thread(prune_everything_but_the_newest, pruned_server.database_url)
    assert pruned > oldest

    streams = {"org": (org_path, owner.token), "pages": ("/pages/stream", None)}
    for name, (path, token) in streams.items():
        for cursor in (str(oldest), str(pruned - 1)):
            # JSON mode, SSE mode, and SSE resuming the way a browser does: all refuse.
            response = await api.request("GET", path, params={"offset": cursor}, token=token)
            assert_problem(response, 409, "must_refetch")
            response = await api.request("GET", path, params={"offset": cursor, "live": "sse"}, token=token)
            assert_problem(response, 409, "must_refetch")
            response = await api.request(
                "GET", path, params={"live": "sse"}, headers={"Last-Event-ID": cursor}, token=token
            )
            assert_problem(response, 409, "must_refetch")

        # Exactly at the mark nothing is missing: the client can continue.
        page = await api.ok("GET", path, params={"offset": str(pruned)}, token=token)
        kept = [m for m in before[name] if int(m["activityId"]) > pruned]
        assert page["activities"] == kept
        # And -1 is everything still kept.
        assert await everything(api, path, token) == kept, name

    # -1 over SSE works, and goes on live.
    stream = await open_stream(pruned_server.port, f"{org_path}?live=sse", token=owner.token)
    created = await api.ok(
        "POST", f"/organizations/{org['id']}/attachments", 201, json={"name": "after"}, token=owner.token
    )
    await stream.until(lambda s: any(c.message["entityId"] == created["id"] for c in s.changes))
    assert all(c.id > pruned for c in stream.changes)
    stream.abort()
    await api.aclose()


# -- a prune that lands during a long catch-up --------------------------------------------------

#: Catch-up reads the log 1,000 activities at a time, and uvicorn waits for its buffer to
#: drain *before* a write, not after: the server writes page 1, reads page 2, and only
#: then waits on a client that stopped reading. Pages of 8 MiB are far more than the
#: socket buffers hold (the client's is fixed at 512 KiB, the server's grows to 4 MiB at
#: most), so a prune made then is seen by the read of page 3.
BIG = 1000
CONTENT_BYTES = 8 * 1024


async def write_big_pages(database_url: str, count: int) -> list[int]:
    """Page activities written straight into the log (fast), as the server's own writes would."""
    database = Database.connect(database_url)
    try:
        writer = ActivityWriter(database, doorbell_from_url("memory://", channel=unique("hardening-")))

        def record_all(tx: WriteTransaction) -> list[int]:
            ids = []
            for n in range(count):
                page = {"id": f"pg_big{n}", "title": f"big {n}", "content": "x" * CONTENT_BYTES}
                ids.append(tx.record(NewActivity("create", "page", page["id"], None, None, None, page)))
            return ids

        return await writer.run(record_all)
    finally:
        await database.dispose()


async def until_routed(server: ServerProcess, newest: int) -> None:
    """Catch-up stops at what the server's log tailer has routed, so activities written
    behind the server's back count once its tailer has read them; its own catch-up tells."""

    async def routed() -> bool:
        stream = await open_stream(server.port, f"/pages/stream?offset={newest - 1}&live=sse")
        stream.abort()
        return bool(stream.offsets[0]["cursor"] == str(newest))

    await until(routed, f"the server's log tailer to reach activity {newest}")


async def test_a_prune_during_catch_up_is_not_a_silent_gap(pruned_server: ServerProcess) -> None:
    ids = await write_big_pages(pruned_server.database_url, 2 * BIG + 200)
    await until_routed(pruned_server, ids[-1])
    first = ids[0]
    sock = socket.socket()
    # A fixed receive buffer (no autotuning): far smaller than the first catch-up page, yet
    # a window large enough to read the whole stream quickly once the client reads again.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 256 * 1024)
    sock.settimeout(60)
    sock.connect(("127.0.0.1", pruned_server.port))
    sock.sendall(f"GET /pages/stream?offset={first}&live=sse HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    head = b""
    while (split := split_head(head)) is None:
        chunk = await asyncio.to_thread(sock.recv, 65536)
        assert chunk, "the server closed before answering"
        head += chunk
    status, _, rest = split
    assert status == 200
    body, parser = Dechunker(), SSEParser()
    received = parser.feed(body.feed(rest))

    def first_change(events: list[Any]) -> bool:
        return any(e.event == "change" for e in events)

    if not first_change(received):
        received += await asyncio.to_thread(_read, sock, body, parser, first_change)
    # The client now stops reading, and the server is stuck with page 2 in hand. Prune.
    pruned = await asyncio.to_thread(prune_everything_but_the_newest, pruned_server.database_url)
    assert pruned == ids[-2]

    def finished(events: list[Any]) -> bool:
        return any(e.event in ("offset", "error") for e in events)

    received += await asyncio.to_thread(_read, sock, body, parser, finished)
    sock.close()
    changes = [int(e.id) for e in received if e.event == "change"]
    errors = [orjson.loads(e.data) for e in received if e.event == "error"]
    # What was sent is a gapless prefix, and the server says why it stopped.
    assert changes == ids[1 : len(changes) + 1], f"silent gap after {len(changes)} changes"
    assert len(changes) < len(ids) - 1
    assert [e["type"] for e in errors] == ["must_refetch"], errors
    assert {"title", "status", "detail"} <= set(errors[0])
    assert not any(e.event == "offset" for e in received)


def _read(sock: socket.socket, body: Dechunker, parser: SSEParser, stop: Any) -> list[Any]:
    """Blocking reads (in a thread) until ``stop(events)`` holds or the server closes."""
    events: list[Any] = []
    while not stop(events):
        chunk = sock.recv(65536)
        if not chunk:
            break
        events.extend(parser.feed(body.feed(chunk)))
    return events
