"""SSE subscribers for the load generator: raw asyncio protocols, minimal parsing.

A subscriber reads the HTTP response head once, then only looks for complete frames (up to the last blank
line received) and, in each, for the ``id: `` line and the send-time marker (:data:`bench.frames.MARK`),
with ``bytes.find``: no SSE parser, no JSON parse, no per-frame allocation beyond two ``int()``. The
receive time is taken once per ``data_received``, which is when the bytes reached the client.

:class:`SubscriberWorker` is a child process (see :mod:`bench.children`) holding thousands of them.
"""

from __future__ import annotations

import asyncio
import time
from array import array
from typing import Any

from bench.frames import MARK, MARK_LEN

_ID = b"\nid: "
_OFFSET = b"event: offset"
_ERROR = b"event: error"


def sse_request(host: str, port: int, path: str, token: str | None) -> bytes:
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}:{port}", "Accept: text/event-stream"]
    if token:
        lines.append(f"Authorization: Bearer {token}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class Subscriber(asyncio.Protocol):
    """One SSE connection; records ``(activity id, send time, receive time)`` of every change frame."""

    def __init__(self, request: bytes, loop: asyncio.AbstractEventLoop) -> None:
        self.request = request
        self.transport: asyncio.Transport | None = None
        self.ready: asyncio.Future[None] = loop.create_future()
        self.status = 0
        self.head_done = False
        self.tail = b""
        self.ids = array("q")
        self.sent = array("q")
        self.received = array("q")
        self.last_id = 0
        self.errors = 0
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        transport.write(self.request)  # type: ignore[attr-defined]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.ready.done():
            self.ready.set_exception(
                ConnectionError(f"closed before the offset frame (status {self.status})")
            )

    def data_received(self, data: bytes) -> None:
        now = time.monotonic_ns()
        if self.tail:
            data = self.tail + data
        if not self.head_done:
            end_of_head = data.find(b"\r\n\r\n")
            if end_of_head < 0:
                self.tail = data
                return
            self.status = int(data[9:12])
            self.head_done = True
            if self.status != 200:
                if not self.ready.done():
                    self.ready.set_exception(ConnectionError(f"status {self.status}: {data[:300]!r}"))
                assert self.transport is not None
                self.transport.close()
                return
            data = data[end_of_head + 4 :]
        end = data.rfind(b"\n\n")
        if end < 0:
            self.tail = data
            return
        self.tail = data[end + 2 :]
        find = data.find
        if not self.ready.done() and find(_OFFSET, 0, end) >= 0:
            self.ready.set_result(None)
        pos = find(_ID, 0, end)
        while pos >= 0:
            eol = find(b"\n", pos + 5)
            activity_id = int(data[pos + 5 : eol])
            frame_end = find(b"\n\n", eol)
            mark = find(MARK, eol, frame_end)
            if mark >= 0:
                start = mark + MARK_LEN
                self.ids.append(activity_id)
                self.sent.append(int(data[start : find(b'"', start)]))
                self.received.append(now)
            self.last_id = activity_id
            pos = find(_ID, frame_end, end)
        if find(_ERROR, 0, end) >= 0:
            self.errors += 1

    def reset(self) -> None:
        self.ids = array("q")
        self.sent = array("q")
        self.received = array("q")


class SubscriberWorker:
    """Child process: opens, holds and reads SSE subscribers, in named groups (one per stream, say);
    reports what each group received."""

    def __init__(self) -> None:
        self.groups: dict[str, list[Subscriber]] = {}

    def _group(self, name: str) -> list[Subscriber]:
        return self.groups.setdefault(name, [])

    async def open(
        self, group: str, host: str, port: int, request: bytes, count: int, concurrency: int, within: float
    ) -> dict[str, Any]:
        """Open ``count`` streams, ``concurrency`` at a time; a stream counts once its offset frame came."""
        loop = asyncio.get_running_loop()
        gate = asyncio.Semaphore(concurrency)
        failures: list[str] = []
        started = time.monotonic()
        deadline = started + within
        subs = self._group(group)

        async def one() -> None:
            async with gate:
                sub = Subscriber(request, loop)
                try:
                    await asyncio.wait_for(loop.create_connection(lambda: sub, host, port), within)
                    await asyncio.wait_for(sub.ready, max(0.1, deadline - time.monotonic()))
                except (OSError, TimeoutError, ConnectionError) as exc:
                    failures.append(repr(exc)[:300])
                    if sub.transport is not None:
                        sub.transport.abort()
                    return
                subs.append(sub)

        await asyncio.gather(*(one() for _ in range(count)))
        return {
            "opened": count - len(failures),
            "failed": len(failures),
            "seconds": time.monotonic() - started,
            "failures": failures[:5],
            "held": len(subs),
        }

    async def reset(self, group: str) -> None:
        for sub in self._group(group):
            sub.reset()

    async def wait_for(self, group: str, last_id: int, within: float) -> dict[str, Any]:
        """Wait until every open subscriber of ``group`` has received ``last_id`` (at most ``within`` s)."""
        subs = self._group(group)
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if all(sub.last_id >= last_id or sub.closed for sub in subs):
                break
            await asyncio.sleep(0.01)
        behind = sum(1 for sub in subs if sub.last_id < last_id)
        return {"behind": behind}

    async def collect(self, group: str, after: int, expected: list[int], within: float) -> dict[str, Any]:
        """Wait for the ``expected`` IDs (all of them, after ``after``), then check and report.

        Every subscriber must have received exactly ``expected``, in order: anything missing is lost.
        """
        subs = self._group(group)
        if expected:
            await self.wait_for(group, expected[-1], within)
        wanted = set(expected)
        latencies = array("q")
        lost = duplicated = unexpected = out_of_order = complete = 0
        last_received = 0
        for sub in subs:
            got = [i for i in sub.ids if i > after]
            if got == expected:
                complete += 1
            else:
                got_set = set(got)
                lost += len(wanted - got_set)
                duplicated += len(got) - len(got_set)
                unexpected += len(got_set - wanted)
                out_of_order += got != sorted(got_set)
            for i, activity_id in enumerate(sub.ids):
                if activity_id > after and activity_id in wanted:
                    received = sub.received[i]
                    latencies.append(received - sub.sent[i])
                    last_received = max(last_received, received)
        return {
            "subscribers": len(subs),
            "complete": complete,
            "lost": lost,
            "duplicated": duplicated,
            "unexpected": unexpected,
            "out_of_order": out_of_order,
            "closed": sum(1 for sub in subs if sub.closed),
            "errors": sum(sub.errors for sub in subs),
            "deliveries": len(latencies),
            "last_received_ns": last_received,
            "latencies": latencies.tobytes(),
        }

    async def close_some(self, group: str, count: int) -> int:
        subs = self._group(group)
        victims, self.groups[group] = subs[:count], subs[count:]
        for sub in victims:
            if sub.transport is not None:
                sub.transport.close()
        return len(self.groups[group])

    async def close(self) -> None:
        for group in list(self.groups):
            await self.close_some(group, len(self.groups[group]))
        await asyncio.sleep(0.05)


class CatchUpReader(asyncio.Protocol):
    """One stream read from ``offset=-1`` to its offset frame: counts change frames, nothing else."""

    def __init__(self, request: bytes, loop: asyncio.AbstractEventLoop) -> None:
        self.request = request
        self.done: asyncio.Future[None] = loop.create_future()
        self.head_done = False
        self.status = 0
        self.tail = b""
        self.frames = 0
        self.last_id = 0
        self.bytes = 0
        self.first_byte_ns = 0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        transport.write(self.request)  # type: ignore[attr-defined]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_exception(ConnectionError("closed before the offset frame"))

    def data_received(self, data: bytes) -> None:
        if not self.first_byte_ns:
            self.first_byte_ns = time.monotonic_ns()
        self.bytes += len(data)
        if self.tail:
            data = self.tail + data
        if not self.head_done:
            end_of_head = data.find(b"\r\n\r\n")
            if end_of_head < 0:
                self.tail = data
                return
            self.status = int(data[9:12])
            self.head_done = True
            data = data[end_of_head + 4 :]
        end = data.rfind(b"\n\n")
        if end < 0:
            self.tail = data
            return
        self.tail = data[end + 2 :]
        self.frames += data.count(_ID, 0, end)
        last = data.rfind(_ID, 0, end)
        if last >= 0:
            self.last_id = int(data[last + 5 : data.find(b"\n", last + 5)])
        if not self.done.done() and data.find(_OFFSET, 0, end) >= 0:
            self.done.set_result(None)


class CatchUpWorker:
    """Child process: one catch-up read, timed from connect to the offset frame."""

    async def read(self, host: str, port: int, request: bytes, within: float) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        reader = CatchUpReader(request, loop)
        started = time.monotonic_ns()
        transport, _ = await loop.create_connection(lambda: reader, host, port)
        try:
            await asyncio.wait_for(reader.done, within)
            finished = time.monotonic_ns()
        finally:
            transport.close()
        return {
            "status": reader.status,
            "frames": reader.frames,
            "last_id": reader.last_id,
            "bytes": reader.bytes,
            "seconds": (finished - started) / 1e9,
            "first_byte_seconds": (reader.first_byte_ns - started) / 1e9,
        }
