"""A subscriber: one open stream's position, outbox and catch-up hand-over.

Routing calls :meth:`Subscriber.deliver`, which never awaits: it appends pre-encoded
bytes to a bounded outbox and either marks it for the per-loop flusher (a live stream
held by its own protocol, see :mod:`syncstream.stream.direct`) or wakes the
connection's writer. A subscriber whose outbox
overflows is cut (it resumes with ``Last-Event-ID`` and loses nothing), so one client
that does not read can never hold back routing for the others.

Catch-up and live delivery meet without gap or duplicate: the subscriber is registered
*before* catch-up starts; live deliveries made meanwhile are held in ``_pending``; when
catch-up has read everything, :meth:`go_live` releases the held ones newer than what
catch-up sent. Activity IDs are integers in commit order, so "newer" is a comparison.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import time
from collections.abc import Callable, Hashable

from syncstream.stream.direct import HeldStream, chunk
from syncstream.stream.frames import error_frame

_ids = itertools.count(1)
SLOW_CONSUMER_FRAME = error_frame("slow_consumer", 409, "The client did not read its stream fast enough.")
EXPIRED_FRAME = error_frame(
    "forbidden", 403, "The session this stream was opened with has expired; sign in again.", title="Forbidden"
)


class Subscriber:
    """Base type for every stream's subscriber; modules subclass it with their own state."""

    # Slots: a server holds tens of thousands of these, mostly idle.
    __slots__ = (
        "_pending",
        "_pending_overflowed",
        "_queue",
        "_sink",
        "_waiter",
        "close_reason",
        "closed",
        "cursor",
        "expires_at",
        "id",
        "index_key",
        "last_write",
        "live",
        "max_queued",
        "on_overflow",
    )

    def __init__(self, *, index_key: str | None, cursor: int, max_queued: int = 1000) -> None:
        self.id = f"sub-{next(_ids)}"
        self.index_key = index_key
        #: Highest activity ID handed to this subscriber (sent, or queued to send).
        self.cursor = cursor
        self.max_queued = max_queued
        self.live = False
        self.closed = False
        self.close_reason: str | None = None
        #: Called when the outbox overflows, to cut a connection whose writer is stuck.
        self.on_overflow: Callable[[Subscriber], None] | None = None
        #: When the writer last took bytes to send (monotonic); keep-alive pings the idle.
        self.last_write = time.monotonic()
        #: When the credentials the stream was opened with end (Unix seconds): the
        #: keep-alive sweep ends the stream then (with :data:`EXPIRED_FRAME`).
        self.expires_at = math.inf
        self._pending: list[tuple[int, bytes]] = []
        self._pending_overflowed = False
        # A list, not a deque: it is only ever appended to and emptied whole, and an
        # empty deque costs ~600 bytes per idle stream where a list costs 56.
        self._queue: list[bytes] = []
        self._waiter: asyncio.Future[object] | None = None
        #: Set while live and held by its own protocol: the flusher writes the outbox then.
        self._sink: HeldStream | None = None

    # -- routing side (synchronous, never waits) ---------------------------------------

    def deliver(self, activity_id: int, frame: bytes) -> None:
        """Hand over one activity's frame, in ascending ID order."""
        if self.closed:
            return
        if not self.live:
            if len(self._pending) >= self.max_queued:
                # Too much arrived during catch-up: forget it and let catch-up read it
                # from the log instead of growing without bound.
                self._pending.clear()
                self._pending_overflowed = True
            elif not self._pending_overflowed:
                self._pending.append((activity_id, frame))
            return
        if activity_id <= self.cursor:
            return
        self.cursor = activity_id
        self.push(frame)

    def push(self, frame: bytes) -> None:
        """Queue raw bytes (a change, a ping); cut the subscriber when the outbox is full."""
        if self.closed:
            return
        queue = self._queue
        if len(queue) >= self.max_queued:
            self._overflow()
            return
        queue.append(frame)
        if len(queue) > 1:
            return  # already marked, or the writer holds the outbox and comes back for it
        sink = self._sink
        if sink is not None:
            sink.flusher.add(self)
        else:
            self._wake()

    def attach(self, sink: HeldStream) -> None:
        """From now on the sink's flusher writes this outbox, and ends the stream."""
        self._sink = sink
        self.on_overflow = None
        if self._queue or self.closed:
            sink.flusher.add(self)

    def detach(self) -> None:
        self._sink = None

    def flush_to_sink(self, now: float, chunks: dict[Hashable, bytes]) -> None:
        """Write the whole outbox as one chunk, unless the transport is paused (the
        flusher's side); end the stream once a closed subscriber's outbox is written.

        A paused transport calls again when it resumes; a closing one ends the stream
        as the connection is lost.
        """
        sink = self._sink
        if sink is None or sink.paused:
            return
        transport = sink.transport
        if transport.is_closing():
            return
        queue = self._queue
        if queue:
            key: Hashable = queue[0] if len(queue) == 1 else tuple(queue)
            data = chunks.get(key)
            if data is None:
                data = chunks[key] = chunk(queue[0] if len(queue) == 1 else b"".join(queue))
            queue.clear()
            self.last_write = now
            transport.write(data)
        if self.closed:
            sink.end()

    def close(self, reason: str, final_frame: bytes | None = None, *, discard_queued: bool = False) -> None:
        """End the stream once the outbox is written (``final_frame`` last)."""
        if self.closed:
            return
        self.closed = True
        self.close_reason = reason
        if discard_queued:
            self._queue.clear()
        if final_frame is not None:
            self._queue.append(final_frame)
        self._pending.clear()
        self._wake()

    def _overflow(self) -> None:
        self.close("slow_consumer", SLOW_CONSUMER_FRAME, discard_queued=True)
        if self._sink is not None:
            self._sink.cut()
        elif self.on_overflow is not None:
            self.on_overflow(self)

    def _wake(self, value: object = None) -> None:
        sink = self._sink
        if sink is not None:
            sink.flusher.add(self)  # it writes what is left, then ends the stream
            return
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(value)

    # -- connection side ----------------------------------------------------------------

    @property
    def queued(self) -> int:
        return len(self._queue)

    def go_live(self) -> bool:
        """Switch from catch-up to live. False means catch-up must read the log again
        (deliveries overflowed while it ran); call again after that."""
        if self._pending_overflowed:
            self._pending_overflowed = False
            self._pending.clear()
            return False
        pending, self._pending = self._pending, []
        self.live = True
        for activity_id, frame in pending:
            self.deliver(activity_id, frame)
        return True

    def take_all(self, max_bytes: int | None = None) -> bytes | None:
        """Everything queued, as one write; None when closed and drained.

        With ``max_bytes``, at most that much (but always one frame): the rest stays queued
        for the next call. Frames are shared between subscribers, but a write joins them
        into bytes of this stream's own, so a reader that drained a long backlog of big
        frames would otherwise pin a private copy of all of it at once.
        """
        queue = self._queue
        if not queue:
            return None if self.closed else b""
        self.last_write = time.monotonic()
        if max_bytes is not None and len(queue) > 1:
            total = 0
            for taken, frame in enumerate(queue):
                total += len(frame)
                if total > max_bytes and taken:
                    data = b"".join(queue[:taken])
                    del queue[:taken]
                    return data
        data = b"".join(queue)
        queue.clear()
        return data

    async def wait(self) -> None:
        """Wait until something is queued or the subscriber closes.

        No timer here: one keep-alive task per process pings idle subscribers
        (:func:`syncstream.stream.helpers.keep_alive`), which is far cheaper than a
        timer armed and cancelled around every wait of every stream.
        """
        if self._queue or self.closed:
            return
        waiter: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        self._waiter = waiter
        try:
            await waiter
        finally:
            self._waiter = None
