"""Live streams held by a small protocol of their own, written straight to the socket.

Once a stream is live on uvicorn's httptools server it needs nothing of the HTTP
machinery any more: not the request cycle, the parser, the scope, the server's events,
nor a task and its coroutine frames waiting for the client to leave. So the connection
is handed to a :class:`HeldStream` (``transport.set_protocol``, as uvicorn itself hands a
connection to its WebSocket protocol), the ASGI task ends, and all of that is freed: an
idle stream is then its transport, this object and its subscriber.

A delivery only appends to the subscriber's outbox and marks it dirty; one callback per
event-loop iteration (:class:`Flusher`) then writes each dirty outbox to its transport,
as one HTTP chunk: everything routed in that iteration (a tailer batch) goes out in one
``transport.write`` per subscriber, and subscribers that received the same frames share
the same chunk ``bytes``. A paused transport (the client reads slowly) keeps its outbox
until the transport asks for more (``resume_writing``); the slow-consumer cut counts what
piles up meanwhile. When the stream ends, the response is ended with the last chunk and
the connection is handed back to a fresh server protocol (keep-alive), or closed.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections.abc import Callable, Hashable
from typing import Any

logger = logging.getLogger("syncstream.stream")

#: How long a cut slow consumer gets to take its error frame before the socket is aborted.
CUT_GRACE_SECONDS = 2.0
#: Outboxes written per event-loop iteration (see :meth:`Flusher.flush`).
FLUSH_SLICE = 128
#: The last chunk of a chunked response.
LAST_CHUNK = b"0\r\n\r\n"
#: What a held stream keeps of what its client sends (a pipelined request, served once the
#: stream ends) before it stops reading.
MAX_HELD_INPUT = 64 * 1024


def chunk(data: bytes) -> bytes:
    """``data`` as one HTTP/1.1 chunk, exactly as uvicorn frames a body message."""
    return b"%x\r\n%s\r\n" % (len(data), data)


class Flusher:
    """Writes the outboxes that received something, once per event-loop iteration.

    One per event loop (the stream middleware owns it). Subscribers call :meth:`add`
    when their outbox goes from empty to non-empty, or when they close; see
    :meth:`Subscriber.push`.
    """

    __slots__ = ("_dirty", "_loop", "_origin", "_scheduled")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._dirty: list[Any] = []
        self._scheduled = False
        # The server protocol a stream's connection goes back to: the same for every
        # connection of a server, so one tuple shared by all held streams.
        self._origin: _Origin | None = None

    def add(self, subscriber: Any) -> None:
        self._dirty.append(subscriber)
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self.flush)

    def flush(self) -> None:
        """Write the dirty outboxes, :data:`FLUSH_SLICE` of them per loop iteration.

        A fan-out to a thousand streams is a thousand socket writes, several
        milliseconds: in one callback, a create that arrived meanwhile waited for all of
        it before its request was even read, and its own activity's delivery came that
        much later. In slices, the loop reads requests, hands commits on and lets the
        tailer route between them; each outbox is still written in order, once per pass.
        """
        dirty = self._dirty
        if len(dirty) <= FLUSH_SLICE:
            self._scheduled = False
            self._dirty = []
        else:
            self._dirty = dirty[FLUSH_SLICE:]
            dirty = dirty[:FLUSH_SLICE]
            self._loop.call_soon(self.flush)  # still scheduled: the rest, next iteration
        now = time.monotonic()
        # The chunk for a given run of frames, built once: in a fan-out every
        # subscriber of a batch holds the same frame objects, so the same key.
        chunks: dict[Hashable, bytes] = {}
        for subscriber in dirty:
            try:
                subscriber.flush_to_sink(now, chunks)
            except Exception:  # one stream's failure must not leave the others' outboxes unwritten
                logger.exception("writing stream %s failed", getattr(subscriber, "id", "?"))

    def origin(self, protocol: Any) -> _Origin | None:
        """How to build another protocol like ``protocol`` (uvicorn's: its class, config,
        server state, app state and loop), or None if it is not built that way."""
        try:
            origin = (
                type(protocol),
                protocol.config,
                protocol.server_state,
                protocol.app_state,
                protocol.loop,
            )
        except AttributeError:
            return None
        cached = self._origin
        if cached is not None and all(a is b for a, b in zip(cached, origin, strict=True)):
            return cached
        self._origin = origin
        return origin


_Origin = tuple[type, Any, Any, Any, asyncio.AbstractEventLoop]


class HeldStream(asyncio.Protocol):
    """A live stream's connection: its transport, its subscriber, and the stream's end.

    It is also the subscriber's sink: :meth:`Subscriber.flush_to_sink` writes the outbox
    to ``transport`` unless ``paused``, and calls :meth:`end` once a closed subscriber's
    outbox is written.
    """

    __slots__ = (
        "_connections",
        "_context",
        "_input",
        "_origin",
        "flusher",
        "keep_alive",
        "on_close",
        "paused",
        "release",
        "subscriber",
        "transport",
    )

    def __init__(
        self,
        transport: asyncio.Transport,
        subscriber: Any,
        flusher: Flusher,
        *,
        on_close: Callable[[Any], None],
        release: Callable[[], None] | None,
        connections: set[Any],
        origin: _Origin | None,
        paused: bool,
        keep_alive: bool,
    ) -> None:
        self.transport = transport
        self.subscriber: Any = subscriber
        self.flusher = flusher
        self.on_close: Callable[[Any], None] | None = on_close
        self.release = release
        self.paused = paused
        self.keep_alive = keep_alive
        self._connections = connections
        self._origin = origin
        self._input: bytes | None = None
        # The request's context (its request ID, for the log lines of the stream's end):
        # ``on_close`` runs in the flusher's or the transport's callbacks, outside it.
        self._context = contextvars.copy_context()

    # -- asyncio.Protocol -------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        # A client may send its next request before this response ends (pipelining):
        # kept for the protocol that takes the connection back, within a bound.
        held = data if self._input is None else self._input + data
        self._input = held
        if len(held) > MAX_HELD_INPUT:
            self.transport.pause_reading()

    def eof_received(self) -> bool | None:
        return None  # the transport closes itself, as uvicorn's protocol lets it

    def connection_lost(self, exc: Exception | None) -> None:
        self._connections.discard(self)
        subscriber = self.subscriber
        if subscriber is not None:
            subscriber.close("client_disconnected", discard_queued=True)
            self._finish()

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        if self.subscriber is not None:
            self.flusher.add(self.subscriber)  # what piled up meanwhile, and a pending end

    # -- the server's side --------------------------------------------------------------

    def shutdown(self) -> None:
        """uvicorn's graceful shutdown: the connection closes when the stream ends."""
        self.keep_alive = False

    # -- the subscriber's side ------------------------------------------------------------

    def end(self) -> None:
        """The subscriber closed and everything it queued is written: end the response."""
        transport = self.transport
        if not self._finish():
            return
        transport.write(LAST_CHUNK)
        if self.keep_alive and self._origin is not None and not transport.is_closing():
            self._hand_back(self._origin)
        else:
            transport.close()

    def cut(self) -> None:
        """The outbox overflowed. On a paused transport, put the error frame behind what
        is buffered (the peer sees it if it ever reads), close, and abort if it never
        does; on a writable one the flusher writes it and ends the response."""
        subscriber, transport = self.subscriber, self.transport
        if subscriber is None or not self.paused or transport.is_closing():
            return
        data = subscriber.take_all() or b""
        self._finish()
        transport.write(chunk(data) + LAST_CHUNK)
        transport.close()
        asyncio.get_running_loop().call_later(CUT_GRACE_SECONDS, transport.abort)

    def _finish(self) -> bool:
        """Give back the subscriber, its registration and its quota lease (once)."""
        subscriber, self.subscriber = self.subscriber, None
        if subscriber is None:
            return False
        subscriber.detach()
        on_close, self.on_close = self.on_close, None
        release, self.release = self.release, None
        try:
            if on_close is not None:
                self._context.run(on_close, subscriber)
        finally:
            if release is not None:
                release()
        return True

    def _hand_back(self, origin: _Origin) -> None:
        """The connection goes back to a new server protocol, as after any response."""
        cls, config, server_state, app_state, loop = origin
        protocol = cls(config=config, server_state=server_state, app_state=app_state, _loop=loop)
        self._connections.discard(self)
        transport = self.transport
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        protocol.on_response_complete()  # counts the request, arms the keep-alive timeout
        pending, self._input = self._input, None
        if pending is not None:
            transport.resume_reading()
            protocol.data_received(pending)


def hand_over(
    cycle: Any,
    subscriber: Any,
    flusher: Flusher,
    on_close: Callable[[Any], None],
    release: Callable[[], None] | None,
) -> HeldStream | None:
    """Take a live stream's connection from uvicorn's httptools protocol, or None when
    the server is another one, or the connection is not in a state to be taken (another
    request pipelined behind this one, a response that is not chunked)."""
    transport: Any = getattr(cycle, "transport", None)
    flow: Any = getattr(cycle, "flow", None)
    get_protocol = getattr(transport, "get_protocol", None)
    if get_protocol is None or getattr(cycle, "chunked_encoding", None) is not True:
        return None
    protocol = get_protocol()
    connections = getattr(protocol, "connections", None)
    if (
        id(getattr(protocol, "cycle", None)) != id(cycle)
        or not isinstance(connections, set)
        or getattr(protocol, "pipeline", None)  # a request queued behind this one
        or getattr(protocol, "_in_head", False)  # … or arriving
        or not isinstance(getattr(flow, "write_paused", None), bool)
        or transport.is_closing()
    ):
        return None
    held = HeldStream(
        transport,
        subscriber,
        flusher,
        on_close=on_close,
        release=release,
        connections=connections,
        origin=flusher.origin(protocol),
        paused=flow.write_paused,
        keep_alive=bool(getattr(cycle, "keep_alive", False)),
    )
    disarm = getattr(protocol, "_disarm_all", None)  # syncstream.protocols' deadlines
    if callable(disarm):
        disarm()
    connections.discard(protocol)
    connections.add(held)
    transport.set_protocol(held)
    # The parser holds the protocol (its callbacks): a cycle that only the collector would
    # free, late (it is often in the oldest generation by now), with the request cycle, the
    # scope and the events behind it. uvicorn breaks it the same way when a connection is lost.
    if hasattr(protocol, "parser"):
        protocol.parser = None
    if getattr(flow, "read_paused", False):
        transport.resume_reading()  # a disconnect is noticed by reading
    # uvicorn's task may now end: it neither ends the response nor closes the connection.
    cycle.response_complete = True
    subscriber.attach(held)
    return held
