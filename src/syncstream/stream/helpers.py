"""Helpers that queue protocol frames on a subscriber, and the keep-alive wait.

Routing code calls these rather than touching the outbox; the frames themselves are
in :mod:`syncstream.stream.frames` (re-exported here for convenience).
"""

from __future__ import annotations

from syncstream.stream.frames import (
    PING_FRAME,
    change_frame,
    error_frame,
    offset_frame,
    retry_frame,
)
from syncstream.stream.subscriber import Subscriber

__all__ = [
    "PING_FRAME",
    "change_frame",
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


async def keep_alive(subscriber: Subscriber, interval: float) -> None:
    """Wait until the subscriber has something to write; after ``interval`` of silence,
    queue a ping so that proxies keep the connection and a dead peer is noticed."""
    if not await subscriber.wait(interval):
        write_ping(subscriber)
