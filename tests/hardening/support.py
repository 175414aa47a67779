"""Helpers of the hardening suite: cheap raw SSE clients (hundreds at once), servers of our
own, polling a remote state with a bound, and reading a process's memory.

The harness's :class:`harness.Stream` runs one httpx stream per task, which is right for a
handful of clients; a disconnect storm needs hundreds, so :class:`RawStream` is a bare
asyncio protocol that parses HTTP/1.1 chunked framing and feeds the project's own
:class:`SSEParser` (the parser is tested on its own in tests/stream/test_sse.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import httpx
import orjson

from api.support import PASSWORD, create_user_with_cli
from databases import create_postgres_database, drop_postgres_database
from harness import Api, ServerProcess, User
from syncstream.stream.sse import ServerSentEvent, SSEParser

BACKENDS = ("sqlite", "postgresql")


# -- databases and servers ---------------------------------------------------------------------


@contextlib.asynccontextmanager
async def fresh_database(kind: str, directory: Path) -> AsyncIterator[str]:
    """A new, empty database of ``kind`` (sqlite or postgresql), dropped afterwards."""
    if kind == "sqlite":
        yield f"sqlite:///{directory / 'hardening.db'}"
        return
    url = await create_postgres_database()
    try:
        yield url
    finally:
        await drop_postgres_database(url)


@contextlib.asynccontextmanager
async def running_server(database_url: str, **kwargs: Any) -> AsyncIterator[ServerProcess]:
    """A ``syncstream serve`` of our own, started in a thread (starting waits for /health,
    and whatever it talks through may run on this event loop)."""
    server = ServerProcess(database_url=database_url, **kwargs)
    try:  # also a start that fails: it may leave a process that never became healthy
        await asyncio.to_thread(server.start)
        yield server
    finally:
        await asyncio.to_thread(server.stop)


async def admin_user(server: ServerProcess, api: Api) -> User:
    """A system admin, made the only way there is (the CLI), signed in."""
    created = await asyncio.to_thread(create_user_with_cli, server.database_url, admin=True)
    body = await api.ok(
        "POST", "/auth/sign-in", json={"email": created["user"]["email"], "password": PASSWORD}
    )
    return User(server.url, body["user"]["id"], created["user"]["email"], body["token"])


# -- remote state --------------------------------------------------------------------------------


async def until(check: Callable[[], Awaitable[bool]], what: str, within: float = 60.0) -> None:
    """Ask ``check`` until it holds. Only for state of another process that has no event to
    await (a counter on /health, a process's memory); bounded, and says what it waited for."""
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {within:.0f} s waiting for {what}")
        await asyncio.sleep(0.05)


async def health(base_url: str) -> tuple[int, dict[str, Any]]:
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
        response = await client.get("/health")
        return response.status_code, response.json()


async def until_subscribers(base_url: str, expected: int, within: float = 60.0) -> None:
    async def holds() -> bool:
        return (await health(base_url))[1]["subscribers"] == expected

    await until(holds, f"/health to count {expected} subscribers", within)


def rss_mib(pid: int) -> float:
    """Resident memory of a process, from /proc (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for process {pid}")


# -- raw SSE clients -----------------------------------------------------------------------------


@dataclass
class Change:
    id: int
    message: dict[str, Any]


class Dechunker:
    """The body of an HTTP/1.1 chunked response, fed the raw bytes after the head."""

    def __init__(self) -> None:
        self.buffer = b""
        self.left = 0
        self.skip_crlf = False
        self.ended = False

    def feed(self, data: bytes) -> bytes:
        out: list[bytes] = []
        buf = self.buffer + data
        while not self.ended:
            if self.skip_crlf:
                if len(buf) < 2:
                    break
                buf, self.skip_crlf = buf[2:], False
            if self.left == 0:
                eol = buf.find(b"\r\n")
                if eol < 0:
                    break
                self.left = int(buf[:eol].split(b";")[0], 16)
                buf = buf[eol + 2 :]
                if self.left == 0:
                    self.ended = True
                    break
            taken = buf[: self.left]
            if not taken:
                break
            out.append(taken)
            buf = buf[len(taken) :]
            self.left -= len(taken)
            if self.left == 0:
                self.skip_crlf = True
        self.buffer = buf
        return b"".join(out)


def split_head(data: bytes) -> tuple[int, dict[str, str], bytes] | None:
    """(status, lower-cased headers, the rest) once ``data`` holds a whole response head."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return None
    status_line, *lines = data[:end].decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, data[end + 4 :]


@dataclass(eq=False)
class RawStream(asyncio.Protocol):
    """One SSE request over a raw socket: status, headers, then parsed events.

    ``changes`` are the ``change`` events in arrival order; ``offsets`` and ``errors``
    the other frames. ``closed`` resolves when the connection ends, by either side.
    """

    request: bytes
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    changes: list[Change] = field(default_factory=list)
    offsets: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    pings: int = 0
    transport: asyncio.Transport | None = None

    def __post_init__(self) -> None:
        loop = asyncio.get_running_loop()
        self.closed: asyncio.Future[None] = loop.create_future()
        self._progress = asyncio.Event()
        self._parser = SSEParser()
        self._head = b""
        self._dechunker: Dechunker | None = None

    # -- asyncio.Protocol ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are duck-typed
        self.transport.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)
        self._progress.set()

    def data_received(self, data: bytes) -> None:
        if self._dechunker is None:
            head = split_head(self._head + data)
            if head is None:
                self._head += data
                return
            self.status, self.headers, data = head
            self._dechunker = Dechunker()
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            data = self._dechunker.feed(data)
        if self.status != 200:
            self.body += data
        elif data:
            self._on_events(self._parser.feed(data))
        self._progress.set()

    def _on_events(self, events: list[ServerSentEvent]) -> None:
        for event in events:
            if event.event == "change":
                self.changes.append(Change(int(event.id or "0"), orjson.loads(event.data)))
            elif event.event == "offset":
                self.offsets.append(orjson.loads(event.data))
            elif event.event == "error":
                self.errors.append(orjson.loads(event.data))
            elif event.event == "ping":
                self.pings += 1

    # -- waiting -------------------------------------------------------------------------------

    async def until(self, check: Callable[[RawStream], bool], within: float = 60.0) -> None:
        """Wait (on this connection's own progress, not a clock) until ``check`` holds."""
        async with asyncio.timeout(within):
            while not check(self):
                if self.closed.done():
                    raise AssertionError(f"stream ended first (status {self.status}): {self.errors}")
                self._progress.clear()
                await self._progress.wait()

    @property
    def ended_cleanly(self) -> bool:
        """The server ended the response properly (the last chunk), not a cut connection."""
        return self._dechunker is not None and self._dechunker.ended

    @property
    def last_id(self) -> int | None:
        return self.changes[-1].id if self.changes else None

    def abort(self) -> None:
        """Drop the connection at once (RST), as a crashing client or a network would."""
        if self.transport is not None:
            self.transport.abort()


def sse_request(port: int, path: str, headers: dict[str, str] | None = None) -> bytes:
    lines = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Accept: text/event-stream"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def open_stream(
    port: int,
    path: str,
    *,
    token: str | None = None,
    last_event_id: int | str | None = None,
    headers: dict[str, str] | None = None,
    ready: bool = True,
    within: float = 60.0,
) -> RawStream:
    """Open an SSE stream; with ``ready``, wait for its ``offset`` frame (catch-up done)."""
    extra = dict(headers or {})
    if token:
        extra["Authorization"] = f"Bearer {token}"
    if last_event_id is not None:
        extra["Last-Event-ID"] = str(last_event_id)
    loop = asyncio.get_running_loop()
    stream = RawStream(sse_request(port, path, extra))
    await asyncio.wait_for(loop.create_connection(lambda: stream, "127.0.0.1", port), within)
    if ready:
        await stream.until(lambda s: bool(s.offsets), within)
    return stream


def assert_exactly_once_in_order(ids: list[int], who: str = "stream") -> None:
    assert ids == sorted(ids), f"{who}: out of order"
    assert len(ids) == len(set(ids)), f"{who}: duplicates"


async def everything(api: Api, path: str, token: str | None = None) -> list[dict[str, Any]]:
    """The whole stream from ``-1`` through JSON mode, following ``hasMore``: the truth a
    streamed sequence is compared with."""
    messages: list[dict[str, Any]] = []
    cursor = "-1"
    while True:
        page = await api.ok("GET", path, params={"offset": cursor, "limit": "1000"}, token=token)
        messages.extend(page["activities"])
        if not page["hasMore"]:
            return messages
        cursor = page["cursor"]
