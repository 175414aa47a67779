"""The ceiling: what a Python server with no framework at all does on this machine.

A raw-socket asyncio server on uvloop that answers any GET with the same SSE head, ``retry`` and ``offset``
frames as syncstream, then writes change frames shaped like syncstream's (:mod:`bench.frames`), chunked the
way uvicorn chunks them, with **one** ``transport.write`` per delivery. No routing, no permissions, no
ASGI: the loop over connections and the syscalls are all that is left. The same subscribers
(:mod:`bench.subscribers`) read it, so fan-out and steady figures of syncstream can be given as ratios to
this server measured in the same run.

With ``coalesce > 1`` it writes that many frames per ``transport.write`` instead, to show what batching
deliveries is worth.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bench.frames import RETRY_FRAME, SSE_RESPONSE_HEAD, change_frame, chunk, offset_frame


class _Connection(asyncio.Protocol):
    def __init__(self, server: CeilingWorker) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.streaming = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.streaming:
            return
        self.buffer += data
        if b"\r\n\r\n" not in self.buffer:
            return
        self.streaming = True
        assert self.transport is not None
        self.transport.write(
            SSE_RESPONSE_HEAD + chunk(RETRY_FRAME) + chunk(offset_frame(self.server.last_id or None))
        )
        self.server.transports[self] = self.transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.transports.pop(self, None)


class CeilingWorker:
    """Child process: the reference server and its commands."""

    def __init__(self) -> None:
        self.transports: dict[_Connection, asyncio.Transport] = {}
        self.server: asyncio.Server | None = None
        self.last_id = 0

    async def start(self, host: str, port: int) -> int:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(lambda: _Connection(self), host, port, backlog=4096)
        return int(self.server.sockets[0].getsockname()[1])

    async def connections(self) -> int:
        return len(self.transports)

    def _deliver(self, frames: list[bytes]) -> int:
        """Write ``frames`` (one activity each) to every connection; returns the writes made."""
        transports = list(self.transports.values())
        data = chunk(b"".join(frames)) if len(frames) > 1 else chunk(frames[0])
        for transport in transports:
            transport.write(data)
        return len(transports)

    def _next_frame(self) -> bytes:
        self.last_id += 1
        return change_frame(self.last_id, time.monotonic_ns())

    async def burst(self, count: int, coalesce: int = 1) -> dict[str, Any]:
        """``count`` activities, each written to every connection; the loop runs between activities."""
        first_id = self.last_id + 1
        started = time.monotonic_ns()
        writes = 0
        remaining = count
        while remaining > 0:
            batch = min(coalesce, remaining)
            remaining -= batch
            writes += self._deliver([self._next_frame() for _ in range(batch)])
            await asyncio.sleep(0)
        return {
            "first_id": first_id,
            "last_id": self.last_id,
            "writes": writes,
            "started_ns": started,
            "finished_ns": time.monotonic_ns(),
        }

    async def steady(self, rate: float, seconds: float) -> dict[str, Any]:
        """One activity every ``1/rate`` s for ``seconds``, written to every connection."""
        loop = asyncio.get_running_loop()
        first_id = self.last_id + 1
        count = round(rate * seconds)
        interval = 1.0 / rate
        begin = loop.time()
        writes = 0
        for i in range(count):
            delay = begin + i * interval - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            writes += self._deliver([self._next_frame()])
        return {"first_id": first_id, "last_id": self.last_id, "writes": writes}

    async def close(self) -> None:
        for transport in list(self.transports.values()):
            transport.close()
        if self.server is not None:
            self.server.close()
            self.server = None
