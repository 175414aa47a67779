"""What following a stream yields: the connection's states and the changes, as plain values.

A caller that shows the connection (``tail``, a status bar) and one that only wants the
changes read the same events, so both share one implementation of resuming.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from syncstream.stream.messages import Problem, StreamMessage


class StreamState(enum.StrEnum):
    """Where a followed stream stands."""

    CONNECTING = "connecting"
    #: Connected; the server is sending the changes missed since the cursor.
    CATCHING_UP = "catching_up"
    #: Catch-up complete (the ``offset`` frame arrived): changes now arrive as they commit.
    LIVE = "live"
    #: Disconnected, waiting the backoff delay before the next attempt.
    RECONNECTING = "reconnecting"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class Connecting:
    """A connection attempt starts; ``attempt`` counts consecutive attempts since something was received."""

    attempt: int
    cursor: str | None


@dataclass(frozen=True, slots=True)
class Connected:
    """The server accepted (200, an event stream); catch-up from ``cursor`` follows."""

    cursor: str | None


@dataclass(frozen=True, slots=True)
class Change:
    """One change. ``raw`` is the ``data`` line exactly as the server sent it (the same bytes wherever the
    activity is delivered), for callers that forward it untouched."""

    message: StreamMessage
    raw: str


@dataclass(frozen=True, slots=True)
class CaughtUp:
    """The ``offset`` frame: everything missed has been delivered; what follows is live."""

    cursor: str | None


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """A keep-alive ``ping``: the connection is alive and idle."""


@dataclass(frozen=True, slots=True)
class Disconnected:
    """The connection ended or could not be made; the next attempt starts in ``retry_in`` seconds.

    ``problem`` is the server's reason when it gave one (an ``error`` frame, a 503); ``error`` the network
    error when there was one (``httpx.ConnectError`` while the server is down, ``httpx.ReadTimeout`` for a
    silent connection, …).
    """

    reason: str
    retry_in: float
    problem: Problem | None = None
    error: Exception | None = None


@dataclass(frozen=True, slots=True)
class Reset:
    """``must_refetch`` was handled (the application's callback ran); the stream restarts from ``-1``."""

    problem: Problem


StreamEvent = Connecting | Connected | Change | CaughtUp | Heartbeat | Disconnected | Reset
