"""What the frames of one SSE connection mean to a follower: the event to hand on, the cursor to move,
or why the connection ends. Pure bookkeeping, kept apart from the connecting and waiting in
:mod:`syncstream.client.follow`."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
import orjson

from syncstream.client.errors import Forbidden
from syncstream.client.events import CaughtUp, Change, Heartbeat, StreamEvent
from syncstream.client.position import Position
from syncstream.client.refusals import problem_from_frame
from syncstream.client.wire import is_newer
from syncstream.stream.messages import OffsetFrame, Problem, StreamMessage
from syncstream.stream.sse import ServerSentEvent

__all__ = ["ConnectionEnd", "interpret"]


@dataclass
class ConnectionEnd:
    """How one connection ended: what the next attempt needs to know."""

    reason: str = ""
    problem: Problem | None = None
    error: httpx.TransportError | None = None
    retry_after: float | None = None
    #: Something arrived (a change, the offset frame, a ping): the connection was healthy.
    delivered: bool = False
    #: Reconnect without waiting: the application asked, ``must_refetch`` was handled, or the server closed
    #: the stream with ``event: close``.
    at_once: bool = False
    #: The server said it is shutting down (``event: close``).
    server_closing: bool = False

    @property
    def unreachable(self) -> bool:
        """The server could not be reached, or the connection ended: gone (restarting, say), not busy."""
        return self.error is not None or (self.problem is None and self.retry_after is None)


def interpret(frame: ServerSentEvent, position: Position, end: ConnectionEnd, url: str) -> StreamEvent | None:
    """What one frame means: the event to yield (None for none), the cursor moved in ``position``, or why
    the connection ends, recorded in ``end``. Raises :class:`~syncstream.client.Forbidden` for a
    ``forbidden`` error frame, and pydantic's ``ValidationError`` for a frame that breaks the contract."""
    if frame.event == "change":
        message = StreamMessage.model_validate_json(frame.data)
        if not is_newer(message.activity_id, position.cursor):
            end.delivered = True
            return None  # a replayed duplicate: already delivered
        position.cursor = message.activity_id
        return Change(message, frame.data)
    if frame.event == "offset":
        caught_up = OffsetFrame.model_validate_json(frame.data)
        if caught_up.cursor is not None and is_newer(caught_up.cursor, position.cursor):
            position.cursor = caught_up.cursor
        position.after_reset = False
        return CaughtUp(cursor=position.cursor)
    if frame.event == "ping":
        return Heartbeat()
    if frame.event == "error":
        problem = problem_from_frame(frame.data)
        if problem.type == "forbidden":
            raise Forbidden(str(problem), problem=problem, url=url)
        # slow_consumer, unavailable, or a type this client does not know: the server ends the stream;
        # resuming from the cursor loses nothing.
        end.problem, end.reason = problem, problem.type
    elif frame.event == "close":
        # The server ends the stream on purpose (it is shutting down): reconnect at once, with the
        # cursor, to whichever process answers next.
        end.server_closing = end.at_once = True
        end.reason = f"the server closed the stream ({_close_reason(frame.data)})"
    # Any other event type is a later extension of the contract: skipped.
    return None


def _close_reason(data: str) -> str:
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        return "no reason given"
    reason = value.get("reason") if isinstance(value, dict) else None
    return str(reason) if reason else "no reason given"
