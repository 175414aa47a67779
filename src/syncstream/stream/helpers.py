"""Helpers that queue protocol frames on a subscriber, and the keep-alive wait.

Routing code calls these rather than touching the outbox; the frames themselves are
in :mod:`syncstream.stream.frames` (re-exported here for convenience).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable

from syncstream.stream.frames import (
    PING_FRAME,
    SHUTDOWN_FRAME,
    change_frame,
    close_frame,
    error_frame,
    offset_frame,
    retry_frame,
)
from syncstream.stream.subscriber import EXPIRED_FRAME, Subscriber

__all__ = [
    "PING_FRAME",
    "SHUTDOWN_FRAME",
    "change_frame",
    "close_frame",
    "error_frame",
    "keep_alive",
    "offset_frame",
    "retry_frame",
    "write_change",
    "write_offset",
    "write_ping",
]


def write_change(subscriber: Subscriber, activity_id: int, frame: bytes) -> None:
    subscriber.deliver(activity_id, frame)


def write_offset(subscriber: Subscriber, cursor: int | None) -> None:
    subscriber.push(offset_frame(cursor))


def write_ping(subscriber: Subscriber) -> None:
    subscriber.push(PING_FRAME)


async def keep_alive(subscribers: Callable[[], Iterable[Subscriber]], interval: float) -> None:
    """Ping every live subscriber that has written nothing for ``interval``, forever; end
    those whose ``expires_at`` has passed.

    Pings keep proxies from closing idle streams and reveal dead peers. One task per
    process sweeps all subscribers a few times per interval, instead of a timer per
    stream re-armed around every write; a ping goes out between ``interval`` and
    ``interval`` plus one sweep after the last write.
    """
    sweep = min(interval / 4, 1.0)
    while True:
        await asyncio.sleep(sweep)
        now, wall = time.monotonic(), time.time()
        for subscriber in subscribers():
            if subscriber.closed:
                continue
            if subscriber.expires_at <= wall:
                # The same sweep ends streams whose credentials expired: within one sweep
                # (at most a second) of the expiry, whether or not anything happens on them.
                subscriber.close("expired", EXPIRED_FRAME)
            elif subscriber.live and now - subscriber.last_write >= interval:
                subscriber.last_write = now
                write_ping(subscriber)
