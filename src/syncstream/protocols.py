"""uvicorn's HTTP protocols with deadlines for the request head and the request body.

uvicorn closes a connection that stays idle *between* requests (``timeout_keep_alive``),
but puts no bound on how long a request takes to arrive: a connection that sends nothing,
or its head a byte at a time, or a body it announced and withholds, is held for ever — a
file descriptor and a little memory each, which is how a few thousand such sockets take a
server down (slowloris). These subclasses add what nginx calls ``client_header_timeout``
and ``client_body_timeout`` and Apache ``mod_reqtimeout``:

- **the head** must arrive whole within ``SYNCSTREAM_HEAD_TIMEOUT_SECONDS`` (20 s, as
  Apache's ``header=20``) of the connection being made or of the request's first byte;
- **the body** within ``SYNCSTREAM_BODY_TIMEOUT_SECONDS`` (60 s, nginx's figure) of the
  head. Both are totals, not idle times between reads: a client trickling a byte a second
  would otherwise never reach either.

A head is also bounded in bytes: httptools buffers an incomplete head without limit (a
client streaming one endless header value at link speed filled memory within the head
deadline), so past :data:`MAX_HEAD_BYTES` the answer is ``431`` at once. (h11 has the
bound already: uvicorn's ``h11_max_incomplete_event_size``.)

Past either the connection is closed. A client that had sent part of a request first gets
``408`` (an RFC 9457 problem, ``request_timeout``) with ``Connection: close``, unless a
response is already under way; one that sent nothing is closed silently, as nginx and
Apache do (a browser's unused pre-connection must not read an error).

Both of uvicorn's parsers are covered: httptools (``syncstream serve``'s default) through
its parser callbacks, h11 through its connection states. ``syncstream serve`` selects them
(``--http``); to run syncstream under uvicorn directly, pass
``--http syncstream.protocols:HttpToolsProtocol`` (or ``:H11Protocol``).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import Any

import h11
from uvicorn.protocols.http import h11_impl, httptools_impl

from syncstream.config import Settings

__all__ = ["H11Protocol", "HttpToolsProtocol", "request_timeout_response"]

logger = logging.getLogger("syncstream.connections")


@functools.cache
def _deadlines() -> tuple[float, float]:
    """The head and body deadlines, read once per process (``serve`` passes its flags to
    its workers through the environment)."""
    settings = Settings.from_env()
    return settings.head_timeout_seconds, settings.body_timeout_seconds


#: The most an incomplete request head may take: the application's own bound on header
#: fields (``request_limits``, 64 KiB) plus as much again for the request line. httptools
#: buffers a head in memory until it is complete, without a bound of its own.
MAX_HEAD_BYTES = 128 * 1024
#: How long a refused connection is still read (and what comes discarded) before it is
#: closed, so that the refusal is not lost to a reset while the client is still sending
#: (nginx's ``lingering_close``).
LINGER_SECONDS = 2.0


def _problem_response(status: bytes, type_: bytes, title: bytes, detail: bytes) -> bytes:
    body = b'{"type":"%s","title":"%s","status":%s,"detail":"%s"}' % (type_, title, status[:3], detail)
    return (
        b"HTTP/1.1 %s\r\ncontent-type: application/problem+json\r\n"
        b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (status, len(body), body)
    )


def request_timeout_response(what: str, seconds: float) -> bytes:
    detail = b"The request %s did not arrive within %g s." % (what.encode(), seconds)
    return _problem_response(b"408 Request Timeout", b"request_timeout", b"Request timeout", detail)


REQUEST_LINE_TOO_LONG_RESPONSE = _problem_response(
    b"400 Bad Request",
    b"bad_request",
    b"Bad request",
    b"A request line may take at most %d bytes." % MAX_HEAD_BYTES,
)
HEAD_TOO_LARGE_RESPONSE = _problem_response(
    b"431 Request Header Fields Too Large",
    b"request_header_fields_too_large",
    b"Request header fields too large",
    b"A request head may take at most %d bytes." % MAX_HEAD_BYTES,
)


class _Deadlines:
    """The timers; the subclasses below say when a head or a body is being waited for.

    Their state lives in slots, not in the instance ``__dict__``: uvicorn's protocol sets
    about thirty attributes in its ``__init__``, and a few more added later unshare and
    regrow that dict, 1.5 KiB more on every connection (and so on every open stream).
    """

    __slots__ = ("_body_timer", "_head_timer")

    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport
    client: tuple[str, int] | None
    cycle: Any

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._head_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        super().__init__(*args, **kwargs)

    def _arm_head(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(_deadlines()[0], self._head_expired)

    def _arm_body(self) -> None:
        if self._body_timer is None:
            self._body_timer = self.loop.call_later(_deadlines()[1], self._body_expired)

    def _disarm_head(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _disarm_body(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def _head_started(self) -> bool:
        """Whether any byte of the awaited head has arrived."""
        raise NotImplementedError

    def _head_expired(self) -> None:
        self._head_timer = None
        # A pipelined head behind a response still being written: no 408 in its middle.
        idle = self.cycle is None or self.cycle.response_complete
        self._expire("head", _deadlines()[0], answer=idle and self._head_started())

    def _body_expired(self) -> None:
        self._body_timer = None
        started = self.cycle is not None and self.cycle.response_started
        self._expire("body", _deadlines()[1], answer=not started)

    def _expire(self, what: str, seconds: float, *, answer: bool) -> None:
        if self.transport.is_closing():
            return
        logger.info(
            "closing a connection from %s: the request %s did not arrive within %g s",
            self.client[0] if self.client else "?",
            what,
            seconds,
        )
        if answer:
            self.transport.write(request_timeout_response(what, seconds))
        self.transport.close()

    def _disarm_all(self) -> None:
        self._disarm_head()
        self._disarm_body()


class HttpToolsProtocol(_Deadlines, httptools_impl.HttpToolsProtocol):
    """uvicorn's httptools protocol with head and body deadlines.

    Timers are armed only when a head or body spans more than one read (a whole request
    in one packet, the usual case, costs two flag writes), and at connection start.
    """

    __slots__ = ("_discarding", "_head_bytes", "_in_body", "_in_head")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._in_head = False
        self._in_body = False
        self._head_bytes = 0
        self._discarding = False
        super().__init__(*args, **kwargs)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head()  # a connection that never sends a byte

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_all()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._discarding:
            return
        super().data_received(data)
        if self._in_head:
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEAD_BYTES and not self.transport.is_closing():
                self._refuse_head()
                return
            self._arm_head()
        elif self._in_body:
            self._arm_body()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._head_bytes = 0

    def _refuse_head(self) -> None:
        """431 (400 while no header field has come: the request line is what is too long,
        which the parser itself answers with 400 below this size), then read and drop what
        still comes for a moment before closing."""
        logger.info(
            "closing a connection from %s: a request head over %d bytes",
            self.client[0] if self.client else "?",
            MAX_HEAD_BYTES,
        )
        self._disarm_all()
        self._discarding = True
        self.transport.write(HEAD_TOO_LARGE_RESPONSE if self.headers else REQUEST_LINE_TOO_LONG_RESPONSE)
        self.loop.call_later(LINGER_SECONDS, self.transport.close)

    def on_headers_complete(self) -> None:
        self._in_head, self._in_body = False, True
        self._disarm_head()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._in_body = False
        self._disarm_body()
        super().on_message_complete()

    def _head_started(self) -> bool:
        return self._in_head


class H11Protocol(_Deadlines, h11_impl.H11Protocol):
    """uvicorn's h11 protocol with head and body deadlines, read off h11's states."""

    __slots__ = ()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_all()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        state = self.conn.their_state
        if state is h11.IDLE and self._head_started():
            self._arm_head()
        elif state is h11.SEND_BODY:
            self._disarm_head()
            self._arm_body()
        elif state is not h11.IDLE or self.cycle is not None:
            self._disarm_all()

    def _head_started(self) -> bool:
        return bool(self.conn.trailing_data[0])
