"""The write load: creates through the API, from a child process, over a minimal HTTP/1.1 client.

Each request is a keep-alive ``POST /organizations/{org}/attachments`` whose ``name`` carries the time it was
sent (see :mod:`bench.frames`). Three shapes of load: a burst (``n`` creates, ``concurrency`` in flight), a
paced open-loop rate (one create every ``1/rate`` s whatever the responses do), and a closed loop
(``clients`` connections, each sending its next create as soon as the last one is answered).
"""

from __future__ import annotations

import asyncio
import time
from array import array
from collections.abc import Sequence
from typing import Any

_HEAD_END = b"\r\n\r\n"
#: How long requests still in flight are waited for once a load's time is up.
GRACE_SECONDS = 2.0
#: The status counted for a request cancelled unanswered after the grace period.
UNFINISHED = -1


class HttpConnection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection with one request in flight at a time."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("connection lost"))

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer + data if self.buffer else data
        end = buffer.find(_HEAD_END)
        if end < 0:
            self.buffer = buffer
            return
        head = buffer[:end].lower()
        at = head.find(b"content-length:")
        length = 0
        if at >= 0:
            eol = head.find(b"\r\n", at)
            length = int(head[at + 15 : eol if eol >= 0 else len(head)])
        total = end + 4 + length
        if len(buffer) < total:
            self.buffer = buffer
            return
        self.buffer = buffer[total:]
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result((int(buffer[9:12]), buffer[end + 4 : total]))

    async def request(self, data: bytes) -> tuple[int, bytes]:
        assert self.transport is not None
        self.waiter = self.loop.create_future()
        self.transport.write(data)
        return await self.waiter


class CreateRequests:
    """Builds the create request; the body is made at the last moment, with the send time in it."""

    def __init__(self, host: str, port: int, org: str, token: str) -> None:
        self.head = (
            f"POST /organizations/{org}/attachments HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
        ).encode()

    def build(self) -> tuple[bytes, int]:
        sent = time.monotonic_ns()
        body = b'{"name":"b%d"}' % sent
        return self.head + b"Content-Length: %d\r\n\r\n" % len(body) + body, sent


class WriterWorker:
    """Child process that sends creates."""

    def __init__(self) -> None:
        self.host = ""
        self.port = 0
        self.requests: CreateRequests | None = None
        self.idle: list[HttpConnection] = []

    async def configure(self, host: str, port: int, org: str, token: str) -> None:
        self.host, self.port = host, port
        self.requests = CreateRequests(host, port, org, token)
        await self.close()

    async def _connection(self) -> HttpConnection:
        while self.idle:
            conn = self.idle.pop()
            if not conn.lost:
                return conn
        loop = asyncio.get_running_loop()
        conn = HttpConnection(loop)
        await loop.create_connection(lambda: conn, self.host, self.port)
        return conn

    async def _create(self, latencies: array[int], statuses: dict[int, int]) -> int:
        """Send one create; returns the send time. Cancelled, it drops its connection."""
        assert self.requests is not None
        conn = await self._connection()
        data, sent = self.requests.build()
        try:
            status, _ = await conn.request(data)
        except ConnectionError:
            status = 0
        except asyncio.CancelledError:
            if conn.transport is not None:
                conn.transport.abort()
            raise
        latencies.append(time.monotonic_ns() - sent)
        statuses[status] = statuses.get(status, 0) + 1
        if not conn.lost:
            self.idle.append(conn)
        return sent

    @staticmethod
    async def _finish(tasks: Sequence[asyncio.Future[Any]], within: float, statuses: dict[int, int]) -> None:
        """Wait at most ``within`` s for ``tasks``; cancel the rest and count them as status -1."""
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=within)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)
            statuses[UNFINISHED] = statuses.get(UNFINISHED, 0) + len(pending)

    def _report(self, started: int, latencies: array[int], statuses: dict[int, int]) -> dict[str, Any]:
        return {
            "started_ns": started,
            "finished_ns": time.monotonic_ns(),
            "statuses": {str(k): v for k, v in statuses.items()},
            "latencies": latencies.tobytes(),
        }

    async def burst(self, count: int, concurrency: int, within: float) -> dict[str, Any]:
        """``count`` creates with ``concurrency`` in flight (at most ``within`` s); ``started_ns`` is the
        first send."""
        latencies: array[int] = array("q")
        statuses: dict[int, int] = {}
        remaining = count
        started = time.monotonic_ns()

        async def client() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                await self._create(latencies, statuses)

        await self._finish([asyncio.ensure_future(client()) for _ in range(concurrency)], within, statuses)
        return self._report(started, latencies, statuses)

    async def paced(self, rate: float, seconds: float) -> dict[str, Any]:
        """Open loop: a create every ``1/rate`` s for ``seconds``, however long each takes."""
        loop = asyncio.get_running_loop()
        latencies: array[int] = array("q")
        statuses: dict[int, int] = {}
        count = round(rate * seconds)
        interval = 1.0 / rate
        started = time.monotonic_ns()
        begin = loop.time()
        tasks: list[asyncio.Future[Any]] = []
        late = 0
        for i in range(count):
            due = begin + i * interval
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -interval:
                late += 1
            tasks.append(asyncio.ensure_future(self._create(latencies, statuses)))
        await self._finish(tasks, GRACE_SECONDS, statuses)
        report = self._report(started, latencies, statuses)
        report["late"] = late
        report["connections"] = len(self.idle)
        return report

    async def closed_loop(self, clients: int, seconds: float) -> dict[str, Any]:
        """``clients`` connections, each sending its next create when the last is answered."""
        latencies: array[int] = array("q")
        statuses: dict[int, int] = {}
        started = time.monotonic_ns()
        stop_at = started + int(seconds * 1e9)

        async def client() -> None:
            while time.monotonic_ns() < stop_at:
                await self._create(latencies, statuses)

        tasks = [asyncio.ensure_future(client()) for _ in range(clients)]
        await self._finish(tasks, seconds + GRACE_SECONDS, statuses)
        return self._report(started, latencies, statuses)

    async def close(self) -> None:
        for conn in self.idle:
            if conn.transport is not None:
                conn.transport.close()
        self.idle = []
