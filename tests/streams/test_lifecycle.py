"""Connections that end: clients leaving, clients not reading, servers stopping."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from harness import Api, ServerProcess, Stream, User
from syncstream.stream.sse import SSEParser

pytestmark = pytest.mark.asyncio(loop_scope="session")

PAGE_BYTES = 400_000


@pytest.fixture
def small_server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A server with a tiny slow-consumer bound, for tests that fill outboxes."""
    proc = ServerProcess(
        database_url=f"sqlite:///{tmp_path / 'small.db'}",
        env={"SYNCSTREAM_SLOW_CONSUMER_MESSAGES": "5"},
    ).start()
    yield proc
    proc.stop()


def make_admin(server: ServerProcess) -> str:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "syncstream.cli",
            "user",
            "create",
            "admin@example.test",
            "--password",
            "correct-horse",
            "--admin",
            "--database-url",
            server.database_url,
        ],
        capture_output=True,
        check=True,
    )
    token: str = orjson.loads(result.stdout)["token"]
    return token


@pytest.fixture
async def admin(small_server: ServerProcess) -> AsyncIterator[Api]:
    api = Api(small_server.url, make_admin(small_server))
    yield api
    await api.aclose()


async def subscriber_count(api: Api) -> int:
    count: int = (await api.ok("GET", "/health"))["subscribers"]
    return count


async def until_subscribers(api: Api, expected: int) -> None:
    """The server's own count is the thing under test; it is only observable by asking."""
    async with asyncio.timeout(30):
        while await subscriber_count(api) != expected:  # noqa: ASYNC110 - a remote counter, no event
            await asyncio.sleep(0.05)


def open_raw_stream(port: int, path: str, last_event_id: str | None = None) -> socket.socket:
    """A client that can stop reading: a raw socket with a tiny receive buffer."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    extra = f"Last-Event-ID: {last_event_id}\r\n" if last_event_id else ""
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}\r\n".encode())
    return sock


def read_all(sock: socket.socket) -> bytes:
    data = b""
    sock.settimeout(30)
    while chunk := sock.recv(1 << 20):
        data += chunk
    sock.close()
    return data


def dechunk(raw: bytes) -> bytes:
    """The body of a chunked HTTP/1.1 response (possibly cut short)."""
    body = raw.split(b"\r\n\r\n", 1)[1]
    out = b""
    while body:
        size_line, _, rest = body.partition(b"\r\n")
        if not size_line:
            break
        size = int(size_line, 16)
        out += rest[:size]
        body = rest[size + 2 :]
    return out


async def test_slow_consumer_is_cut_others_unaffected_and_it_resumes(
    small_server: ServerProcess, admin: Api
) -> None:
    reader = Api(small_server.url)
    path = "/pages/stream?offset=now&live=sse"
    async with Stream(reader.client, path, {}) as normal:
        _, offset = await normal.until_offset()
        start = orjson.loads(offset.data)["cursor"]
        slow = await asyncio.to_thread(open_raw_stream, small_server.port, path)
        await until_subscribers(admin, 2)
        created = []
        for i in range(40):
            page = await admin.ok("POST", "/pages", 201, json={"title": f"p{i}", "content": "x" * PAGE_BYTES})
            created.append(page["id"])
            event = await normal.next()  # the reader keeps up, whatever the slow one does
            assert event is not None
            assert orjson.loads(event.data)["entityId"] == page["id"]
        await until_subscribers(admin, 1)
    metrics = (await admin.request("GET", "/metrics")).text
    assert "syncstream_slow_consumer_disconnects_total 1.0" in metrics

    events = SSEParser().feed(dechunk(await asyncio.to_thread(read_all, slow)))
    received = [orjson.loads(e.data)["entityId"] for e in events if e.event == "change"]
    assert received == created[: len(received)]
    assert len(received) < len(created)
    last_id = next((e.id for e in reversed(events) if e.event == "change"), start)
    async with Stream(reader.client, path, {"Last-Event-ID": str(last_id)}) as resumed:
        rest, _ = await resumed.until_offset()
    assert received + [orjson.loads(e.data)["entityId"] for e in rest] == created
    await reader.aclose()


async def test_departed_clients_are_unregistered(small_server: ServerProcess, admin: Api) -> None:
    reader = Api(small_server.url)
    streams = [Stream(reader.client, "/pages/stream?offset=now&live=sse", {}) for _ in range(5)]
    for stream in streams:
        await stream.__aenter__()
        await stream.until_offset()
    await until_subscribers(admin, 5)
    for stream in streams:
        await stream.close()
    await until_subscribers(admin, 0)
    await reader.aclose()


async def test_client_leaving_during_catch_up_is_unregistered(
    small_server: ServerProcess, admin: Api
) -> None:
    for i in range(30):
        await admin.ok("POST", "/pages", 201, json={"title": f"p{i}", "content": "y" * PAGE_BYTES})
    sock = await asyncio.to_thread(open_raw_stream, small_server.port, "/pages/stream?offset=-1&live=sse")
    await until_subscribers(admin, 1)
    first = await asyncio.to_thread(sock.recv, 1024)
    assert first.startswith(b"HTTP/1.1 200")
    sock.close()  # mid catch-up: 12 MB of history cannot have been written yet
    await until_subscribers(admin, 0)


async def test_shutdown_closes_streams_cleanly_and_clients_resume(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'restart.db'}"
    first = ServerProcess(database_url=database_url).start()
    api = Api(first.url)
    user: User = await api.sign_up()
    owner = user.api()
    org = await owner.ok("POST", "/organizations", 201, json={"name": "R", "slug": "restart-org"})
    url = f"/organizations/{org['id']}/sync/stream?offset=-1&live=sse"
    before = await owner.ok("POST", f"/organizations/{org['id']}/attachments", 201, json={"name": "a"})
    async with Stream(owner.client, url, owner.headers()) as stream:
        changes, _ = await stream.until_offset()
        assert orjson.loads(changes[-1].data)["entityId"] == before["id"]
        last_id = changes[-1].id
        code = await asyncio.to_thread(first.stop)
        final = await stream.next()
        assert final is not None
        assert final.event == "close"  # the client may reconnect at once
        assert orjson.loads(final.data) == {"reason": "shutdown"}
        assert await stream.next() is None  # a clean end of stream, not a reset
    assert code in (0, -signal.SIGTERM)  # uvicorn re-raises the signal it handled
    second = ServerProcess(database_url=database_url, port=first.port).start()
    async with httpx.AsyncClient(base_url=second.url) as client:
        after = (
            await client.post(
                f"/organizations/{org['id']}/attachments", json={"name": "b"}, headers=owner.headers()
            )
        ).json()
        headers = owner.headers() | {"Last-Event-ID": str(last_id)}
        async with Stream(client, url, headers) as resumed:
            rest, _ = await resumed.until_offset()
    assert [orjson.loads(e.data)["entityId"] for e in rest] == [after["id"]]
    second.stop()
    await owner.aclose()
    await api.aclose()
