"""The exceptions of the client, one per thing the application must do differently.

A stream client either keeps going (drops, restarts, a slow consumer cut: it resumes by itself) or stops
and tells the application why, with an exception the application can act on: sign in again
(:class:`Unauthorized`), stop showing the organization (:class:`Forbidden`, :class:`NotFound`), drop its
cache (:class:`MustRefetch`), or report a bug (:class:`RefetchLoopError`, :class:`ProtocolError`).
"""

from __future__ import annotations

from syncstream.stream.messages import Problem

__all__ = [
    "BadRequest",
    "Forbidden",
    "MustRefetch",
    "NotAStream",
    "NotFound",
    "ProblemError",
    "ProtocolError",
    "RefetchLoopError",
    "StreamUnavailable",
    "SyncStreamError",
    "Unauthorized",
]


class SyncStreamError(Exception):
    """Base of every error the client raises; ``problem`` is the server's RFC 9457 body when there is one."""

    def __init__(self, message: str, *, problem: Problem | None = None, url: str | None = None) -> None:
        super().__init__(message)
        self.problem = problem
        self.url = url


class ProblemError(SyncStreamError):
    """The server refused the request with a problem that retrying will not fix."""

    @property
    def status(self) -> int | None:
        return self.problem.status if self.problem is not None else None


class BadRequest(ProblemError):
    """400: a parameter is malformed (an unknown entity type, a bad offset); ``problem.detail`` names it."""


class Unauthorized(ProblemError):
    """401: no, an invalid or a signed-out token. Retrying with the same token cannot help: sign in again."""


class Forbidden(ProblemError):
    """403, or an ``event: error`` frame of type ``forbidden``: the caller lost access to the stream
    (membership removed, organization deleted, token signed out). The stream has ended for good."""


class NotFound(ProblemError):
    """404: the organization does not exist *or the caller is not a member* (the server does not say
    which)."""


class MustRefetch(ProblemError):
    """409 ``must_refetch``: the server cannot continue from the cursor (it is from another history, or older
    than what the server keeps). Everything the application cached from this stream may be stale: drop it
    and read the stream again from ``-1``.

    Raised only when no ``on_must_refetch`` callback was given; the stored cursor has already been cleared,
    so opening the stream again (without an explicit ``offset``) starts from ``-1``. With a callback, the
    client calls it with this exception and restarts by itself.
    """

    def __init__(
        self, message: str, *, problem: Problem | None = None, url: str | None = None, cursor: str | None
    ) -> None:
        super().__init__(message, problem=problem, url=url)
        #: The cursor the server refused.
        self.cursor = cursor


class RefetchLoopError(ProblemError):
    """``must_refetch`` again right after a reset (before the restarted stream finished its catch-up), or for
    a request from ``-1``, which no reset can improve. Resetting again would loop forever, dropping the
    application's cache each time, so the client stops and reports it: the server (or something between it
    and the client) is broken."""


class StreamUnavailable(SyncStreamError):
    """The stream could not be (re)connected within the configured ``Backoff.max_attempts``."""


class ProtocolError(SyncStreamError):
    """The server answered something the contract does not allow (a 200 that is not an event stream, a JSON
    page that does not advance). Retrying would not help."""


class NotAStream(ProtocolError):
    """The URL answered 200 with something other than an event stream (an HTML page, a JSON document):
    it is not a stream URL. ``content_type`` is what it answered."""

    def __init__(self, message: str, *, content_type: str, url: str | None = None) -> None:
        super().__init__(message, url=url)
        self.content_type = content_type
