"""Resuming subscribers for the reconnect storm: each follows one stream across connections.

A :class:`Follower` is what a client of the stream keeps (every activity ID it received, the last one);
each connection is a :class:`Connection` (a raw asyncio protocol, parsing as little as
:mod:`bench.subscribers` does). When an armed follower's connection drops it reconnects at once with
``Last-Event-ID`` (as syncstream's own clients do after ``event: close``), then, while the server cannot
be reached, every 0.1-0.5 s at random (the clients' fast window); a ``503`` waits its ``Retry-After``.
It is live again when the new connection's ``offset`` frame arrives (its catch-up is complete).

:class:`StormWorker` is a child process (see :mod:`bench.children`) holding thousands of followers.
"""

from __future__ import annotations

import asyncio
import random
import time
from array import array
from typing import Any

_ID = b"\nid: "
_OFFSET = b"event: offset"
#: Connection attempts in flight per child process (under the server's accept backlog of 2048).
CONNECTING = 1000


class Follower:
    """One client's view of one stream, across reconnections."""

    def __init__(self) -> None:
        self.ids = array("q")
        self.last_id = 0
        self.connection: Connection | None = None
        self.dropped_ns = 0
        self.live_ns = 0
        self.attempts = 0
        self.statuses: dict[int, int] = {}

    def request(self, host: str, port: int, path: str, token: str) -> bytes:
        lines = [f"GET {path} HTTP/1.1", f"Host: {host}:{port}", "Accept: text/event-stream"]
        lines.append(f"Authorization: Bearer {token}")
        if self.last_id:
            lines.append(f"Last-Event-ID: {self.last_id}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode()


class Connection(asyncio.Protocol):
    """One connection of a follower; ``ready`` resolves at the ``offset`` frame (or fails)."""

    def __init__(self, follower: Follower, request: bytes, loop: asyncio.AbstractEventLoop) -> None:
        self.follower = follower
        self.request = request
        self.ready: asyncio.Future[None] = loop.create_future()
        self.lost: asyncio.Future[None] = loop.create_future()
        self.transport: asyncio.Transport | None = None
        self.head_done = False
        self.status = 0
        self.retry_after = 0.0
        self.tail = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        transport.write(self.request)  # type: ignore[attr-defined]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(f"closed before the offset frame ({self.status})"))
        if not self.lost.done():
            self.lost.set_result(None)

    def data_received(self, data: bytes) -> None:
        if self.tail:
            data = self.tail + data
        if not self.head_done:
            end_of_head = data.find(b"\r\n\r\n")
            if end_of_head < 0:
                self.tail = data
                return
            self.status = int(data[9:12])
            self.head_done = True
            statuses = self.follower.statuses
            statuses[self.status] = statuses.get(self.status, 0) + 1
            if self.status != 200:
                at = data.lower().find(b"retry-after: ", 0, end_of_head)
                if at >= 0:
                    self.retry_after = float(data[at + 13 : data.find(b"\r\n", at)])
                assert self.transport is not None
                self.transport.close()
                return
            data = data[end_of_head + 4 :]
        end = data.rfind(b"\n\n")
        if end < 0:
            self.tail = data
            return
        self.tail = data[end + 2 :]
        follower = self.follower
        find = data.find
        pos = find(_ID, 0, end)
        while pos >= 0:
            eol = find(b"\n", pos + 5)
            activity_id = int(data[pos + 5 : eol])
            follower.ids.append(activity_id)
            follower.last_id = activity_id
            pos = find(_ID, eol, end)
        if not self.ready.done() and find(_OFFSET, 0, end) >= 0:
            self.ready.set_result(None)


class StormWorker:
    """Child process: opens followers, then, armed, resumes each one its connection drops."""

    def __init__(self) -> None:
        self.followers: list[Follower] = []
        self.target: tuple[str, int, str, str] = ("", 0, "", "")
        self.armed = False
        self.resuming: set[asyncio.Task[None]] = set()
        self.gate: asyncio.Semaphore | None = None
        self.deadline = 0.0
        self.failures: list[str] = []

    async def open(
        self, host: str, port: int, path: str, token: str, count: int, concurrency: int, within: float
    ) -> dict[str, Any]:
        """Open ``count`` followers at ``offset=now``, ``concurrency`` at a time."""
        self.target = (host, port, path, token)
        gate = asyncio.Semaphore(concurrency)
        deadline = time.monotonic() + within

        async def one() -> None:
            follower = Follower()
            async with gate:
                await self._connect(follower, path + "?offset=now&live=sse", deadline)
                if follower.connection is not None:
                    self.followers.append(follower)

        started = time.monotonic()
        await asyncio.gather(*(one() for _ in range(count)))
        return {
            "opened": len(self.followers),
            "seconds": time.monotonic() - started,
            "failures": self.failures[:5],
        }

    async def _connect(self, follower: Follower, path: str, deadline: float) -> Connection:
        """One attempt; the follower is live on it if its ``ready`` is done without error."""
        host, port, _, token = self.target
        loop = asyncio.get_running_loop()
        connection = Connection(follower, follower.request(host, port, path, token), loop)
        follower.attempts += 1
        try:
            await asyncio.wait_for(loop.create_connection(lambda: connection, host, port), 10)
            await asyncio.wait_for(connection.ready, max(0.1, deadline - time.monotonic()))
        except (OSError, TimeoutError, ConnectionError) as exc:
            if connection.transport is not None:
                connection.transport.abort()
            if len(self.failures) < 20:
                self.failures.append(repr(exc)[:200])
            connection.ready.cancel()  # not live (and no exception left unretrieved)
            return connection
        follower.connection = connection
        connection.lost.add_done_callback(lambda _: self._dropped(follower, connection))
        return connection

    def _dropped(self, follower: Follower, connection: Connection) -> None:
        if follower.connection is not connection or not self.armed:
            return
        follower.connection = None
        follower.dropped_ns = time.monotonic_ns()
        task = asyncio.get_running_loop().create_task(self._resume(follower))
        self.resuming.add(task)
        task.add_done_callback(self.resuming.discard)

    async def _resume(self, follower: Follower) -> None:
        """Reconnect with ``Last-Event-ID`` until live again (within the arm's deadline)."""
        assert self.gate is not None
        path = self.target[2] + "?live=sse"
        while time.monotonic() < self.deadline:
            async with self.gate:
                connection = await self._connect(follower, path, self.deadline)
            if follower.connection is connection:
                follower.live_ns = time.monotonic_ns()
                return
            # Refused or dropped: soon again; a 503 or 429 waits what the server asked.
            await asyncio.sleep(max(random.uniform(0.1, 0.5), min(connection.retry_after, 10.0)))

    async def arm(self, within: float) -> int:
        """From now on a dropped follower resumes (for at most ``within`` seconds)."""
        self.armed = True
        self.deadline = time.monotonic() + within
        self.gate = asyncio.Semaphore(CONNECTING)
        for follower in self.followers:
            follower.dropped_ns = follower.live_ns = 0
        return len(self.followers)

    async def progress(self) -> dict[str, Any]:
        """How many followers dropped and how many are live again, and when (monotonic ns)."""
        dropped = [f.dropped_ns for f in self.followers if f.dropped_ns]
        live = [f.live_ns for f in self.followers if f.live_ns]
        return {
            "followers": len(self.followers),
            "dropped": len(dropped),
            "live_again": len(live),
            "first_drop_ns": min(dropped, default=0),
            "last_drop_ns": max(dropped, default=0),
            "last_live_ns": max(live, default=0),
            "live_ns": array("q", live).tobytes(),
        }

    async def collect(self, expected: list[int], within: float) -> dict[str, Any]:
        """Wait until every follower has the last expected ID, then compare each with ``expected``."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if all(f.last_id >= expected[-1] for f in self.followers):
                break
            await asyncio.sleep(0.02)
        wanted = set(expected)
        lost = duplicated = unexpected = out_of_order = complete = 0
        statuses: dict[int, int] = {}
        for follower in self.followers:
            got = list(follower.ids)
            for status, n in follower.statuses.items():
                statuses[status] = statuses.get(status, 0) + n
            if got == expected:
                complete += 1
                continue
            got_set = set(got)
            lost += len(wanted - got_set)
            duplicated += len(got) - len(got_set)
            unexpected += len(got_set - wanted)
            out_of_order += got != sorted(got_set)
        return {
            "followers": len(self.followers),
            "complete": complete,
            "lost": lost,
            "duplicated": duplicated,
            "unexpected": unexpected,
            "out_of_order": out_of_order,
            "attempts": sum(f.attempts for f in self.followers),
            "statuses": {str(k): v for k, v in statuses.items()},
            "failures": self.failures[:5],
        }

    async def close(self) -> None:
        self.armed = False
        for task in list(self.resuming):
            task.cancel()
        for follower in self.followers:
            if follower.connection is not None and follower.connection.transport is not None:
                follower.connection.transport.close()
        await asyncio.sleep(0.05)
