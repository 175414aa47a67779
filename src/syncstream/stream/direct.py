"""Live frames written straight to the socket, not through a task per stream.

Waking one task per subscriber for every delivery (a future, a task switch, the ASGI
``send``) cost several times the socket write itself. So once a stream is live on a
server whose transport we can reach, a delivery only appends to the subscriber's
outbox and marks it dirty; one callback per event-loop iteration (:class:`Flusher`)
then writes each dirty outbox to its transport, as one HTTP chunk: everything routed
in that iteration (a tailer batch) goes out in one ``transport.write`` per subscriber,
and subscribers that received the same frames share the same chunk ``bytes``.

The stream's own task only runs when the fast path cannot: the transport is paused
(the client reads slowly: waiting for it to drain is the task's job, and the slow
consumer cut counts what piles up meanwhile), the task is itself in the middle of a
write (order: it holds bytes taken from the outbox), or the stream is closing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Hashable
from typing import Any, Protocol


class _Flow(Protocol):
    """uvicorn's per-connection flow control, as far as this module reads it."""

    write_paused: bool


class Sink:
    """Where one live stream's outbox goes when the fast path may write it.

    ``busy`` is set by the stream's task while it holds bytes it took from the outbox
    and has not written yet: the flusher must not overtake them. ``wake`` gets the
    stream's task going (it waits on the server's ``receive``, which also tells it
    when the client leaves: one task per stream, not a writer and a watcher).
    """

    __slots__ = ("busy", "flow", "flusher", "transport", "wake")

    def __init__(
        self, transport: asyncio.Transport, flow: _Flow, wake: Callable[[], None], flusher: Flusher
    ) -> None:
        self.transport = transport
        self.flow = flow
        self.wake = wake
        self.flusher = flusher
        self.busy = False

    def writable(self) -> bool:
        return not (self.busy or self.flow.write_paused or self.transport.is_closing())


def chunk(data: bytes) -> bytes:
    """``data`` as one HTTP/1.1 chunk, exactly as uvicorn frames a body message."""
    return b"%x\r\n%s\r\n" % (len(data), data)


class Flusher:
    """Writes the outboxes that received something, once per event-loop iteration.

    One per event loop (the stream middleware owns it). Subscribers call :meth:`add`
    when their outbox goes from empty to non-empty; see :meth:`Subscriber.push`.
    """

    __slots__ = ("_dirty", "_loop", "_scheduled")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._dirty: list[Any] = []
        self._scheduled = False

    def add(self, subscriber: Any) -> None:
        self._dirty.append(subscriber)
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self.flush)

    def flush(self) -> None:
        self._scheduled = False
        dirty, self._dirty = self._dirty, []
        now = time.monotonic()
        # The chunk for a given run of frames, built once: in a fan-out every
        # subscriber of a batch holds the same frame objects, so the same key.
        chunks: dict[Hashable, bytes] = {}
        for subscriber in dirty:
            subscriber.flush_to_sink(now, chunks)
