"""Catch-up: replay what a subscriber missed, then hand over to live delivery.

The subscriber is already registered (and so buffering live deliveries) when this
runs. Reading pages of the log until one comes back complete, then calling
:meth:`Subscriber.go_live`, leaves no window in which an activity could be neither
read here nor delivered live.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from operator import itemgetter

from syncstream.stream.frames import offset_frame
from syncstream.stream.subscriber import Subscriber


@dataclass(frozen=True, slots=True)
class CatchUpPage:
    """One read of the log: the frames this subscriber may see, ascending by ID.

    ``scanned_through`` is the highest ID the read covered (visible or not), so the
    next read starts after it; ``complete`` means the read reached the end of the log.
    """

    frames: list[tuple[int, bytes]]
    scanned_through: int
    complete: bool


FetchPage = Callable[[int], Awaitable[CatchUpPage]]
#: A complete last page up to this size goes out in one write with the offset frame
#: (a resume a few activities behind: one write, not two). A bigger one is written
#: first, before the stream goes live: while a write waits on a slow reader, the
#: deliveries arriving are held in the subscriber's pending list (which falls back to
#: the log when it overflows), not in its outbox (which would cut the stream).
JOIN_LAST_PAGE_BYTES = 16 * 1024
_activity_id = itemgetter(0)


async def replay(subscriber: Subscriber, fetch_page: FetchPage, reported: int | None) -> AsyncIterator[bytes]:
    """Yield catch-up bytes to write, ending with the ``offset`` frame.

    ``reported`` is the cursor the offset frame names when nothing is sent (the
    resolved offset); otherwise it names the last activity sent.
    """
    after = subscriber.cursor
    last_sent = reported
    while not subscriber.closed:
        page = await fetch_page(after)
        frames = page.frames
        # Frames ascend by ID, so what is past the cursor is a suffix: found by bisection
        # rather than a comparison per frame (catch-up sends tens of thousands a second).
        start = bisect_right(frames, subscriber.cursor, key=_activity_id)
        chunk = b""
        if start < len(frames):
            subscriber.cursor = last_sent = frames[-1][0]
            chunk = b"".join([frame for _, frame in frames[start:]])
        after = max(after, page.scanned_through)
        if page.complete:
            if len(chunk) > JOIN_LAST_PAGE_BYTES:
                yield chunk  # still catching up while it is written (see above)
                chunk = b""
            # The offset frame is built before go_live() moves the cursor over the
            # deliveries held during catch-up: those follow it as live frames (queued
            # meanwhile, and written only after this last write of catch-up).
            frame = offset_frame(last_sent)
            if subscriber.go_live():
                yield chunk + frame
                return
        if chunk:
            yield chunk
