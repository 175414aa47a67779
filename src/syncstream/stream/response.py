"""The ASGI side of one SSE stream: writes catch-up, then the subscriber's outbox.

A plain ASGI callable rather than Starlette's ``StreamingResponse``: it needs to write
whatever is queued as one coalesced write, to notice a client that went away without
waiting for the next write, and to cut a client that stopped reading.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any, cast

from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from syncstream.stream.direct import Flusher, Sink, chunk
from syncstream.stream.helpers import error_frame, retry_frame
from syncstream.stream.subscriber import Subscriber

logger = logging.getLogger("syncstream.stream")

#: Scope key under which :class:`StreamMiddleware` leaves the server's own ``send``.
RAW_SEND_KEY = "syncstream.raw_send"
#: Scope key of the list into which an :class:`SSEResponse` defers itself.
DEFERRED_KEY = "syncstream.deferred"
#: How long a cut slow consumer gets to take its error frame before the socket is aborted.
CUT_GRACE_SECONDS = 2.0

SSE_HEADERS: list[tuple[bytes, bytes]] = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


class StreamMiddleware:
    """Outermost middleware, and where streams run.

    It remembers the server's own ``send``, so a stream can reach the transport (through
    uvicorn's request cycle) to abort a connection stuck on a full socket. And it runs
    the streams themselves: an :class:`SSEResponse` returned by a route defers itself to
    here, so the framework's whole call stack (middleware, routing, dependencies, the
    request) is released while the stream stays open for hours. That is most of the
    memory an idle connection would otherwise hold.

    Opening a stream (authentication, cursor checks, a few database reads) is the
    expensive part of its life, so at most ``max_opening`` stream requests run it at
    once; the rest wait here, cheaply. A reconnect storm then queues instead of piling
    thousands of half-built requests on the database pool and the heap.
    """

    def __init__(self, app: Any, max_opening: int = 64) -> None:
        self.app = app
        self.max_opening = max_opening
        self._opening: asyncio.Semaphore | None = None
        self._flusher: Flusher | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        deferred: list[SSEResponse] = []
        scope[RAW_SEND_KEY] = send
        scope[DEFERRED_KEY] = deferred
        if scope["path"].endswith("/stream"):
            if self._opening is None:
                self._opening = asyncio.Semaphore(self.max_opening)
            async with self._opening:
                await self.app(scope, receive, send)
        else:
            await self.app(scope, receive, send)
        if deferred:
            stream = deferred.pop()
            del deferred
            _release_framework(scope)
            if self._flusher is None:
                self._flusher = Flusher(asyncio.get_running_loop())
            await stream.run({RAW_SEND_KEY: send}, receive, send, flusher=self._flusher)


#: What the server itself put in the scope (uvicorn reads ``method`` after this); the
#: rest is the framework's, kept alive by the server's request cycle for as long as a
#: deferred stream runs unless dropped.
_SERVER_SCOPE_KEYS = frozenset(
    {
        "type",
        "asgi",
        "http_version",
        "server",
        "client",
        "scheme",
        "method",
        "root_path",
        "path",
        "query_string",
    }
)


def _release_framework(scope: Scope) -> None:
    for key in [key for key in scope if key not in _SERVER_SCOPE_KEYS]:
        del scope[key]


def _transport(scope: Scope) -> asyncio.Transport | None:
    raw = scope.get(RAW_SEND_KEY)
    # Starlette's CORSMiddleware (outside this one, so that streams get its headers)
    # hands on ``partial(self.send, send=<the server's send>)``.
    while isinstance(raw, functools.partial):
        raw = raw.keywords.get("send")
    transport = getattr(getattr(raw, "__self__", None), "transport", None)
    # Duck-typed: uvloop's transports do not derive from asyncio's classes.
    if transport is not None and all(
        callable(getattr(transport, name, None)) for name in ("write", "close", "abort", "is_closing")
    ):
        return cast(asyncio.Transport, transport)
    return None


def _sink(scope: Scope, transport: asyncio.Transport | None) -> Sink | None:
    """A sink for direct writes, if the server is uvicorn's httptools one with a chunked
    response under way (its ``send`` is a bound method of the request cycle)."""
    cycle = getattr(scope.get(RAW_SEND_KEY), "__self__", None)
    flow = getattr(cycle, "flow", None)
    if transport is None or getattr(cycle, "chunked_encoding", None) is not True:
        return None
    if flow is None or not isinstance(getattr(flow, "write_paused", None), bool):
        return None
    return Sink(transport, flow)


class SSEResponse(Response):
    """Drives one registered subscriber until it closes or the client leaves.

    A :class:`Response` only so that frameworks pass it through untouched; it builds
    its own headers and never uses ``body``.
    """

    def __init__(
        self,
        subscriber: Subscriber,
        catch_up: AsyncIterator[bytes],
        *,
        on_open: Callable[[Subscriber], None],
        on_close: Callable[[Subscriber], None],
        retry_ms: int,
        extra_headers: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        self.subscriber = subscriber
        self.catch_up = catch_up
        self.on_open = on_open
        self.on_close = on_close
        self.retry_ms = retry_ms
        self.raw_headers = SSE_HEADERS + (extra_headers or [])
        self.status_code = 200
        self.background = None
        self._writing = False
        self._sink: Sink | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        deferred = scope.get(DEFERRED_KEY)
        if isinstance(deferred, list):
            deferred.append(self)
            return
        await self.run(scope, receive, send)

    async def run(
        self, scope: Scope, receive: Receive, send: Send, *, flusher: Flusher | None = None
    ) -> None:
        subscriber = self.subscriber
        # Registered before catch-up reads the log: what commits meanwhile is held,
        # not lost (see stream.catchup).
        self.on_open(subscriber)
        transport = _transport(scope)
        if transport is not None:
            subscriber.on_overflow = lambda sub: self._cut(transport, sub)
        watcher = asyncio.create_task(self._watch_disconnect(receive))
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            await self._write(send, retry_frame(self.retry_ms))
            await self._write_catch_up(send)
            if flusher is not None:
                self._sink = _sink(scope, transport)
                if self._sink is not None:
                    subscriber.attach(self._sink, flusher)
            await self._write_live(send)
        except OSError:
            subscriber.close("client_disconnected")
        finally:
            watcher.cancel()
            subscriber.detach()
            subscriber.close(subscriber.close_reason or "ended")
            self.on_close(subscriber)
            with contextlib.suppress(OSError, RuntimeError):
                await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _write(self, send: Send, data: bytes) -> None:
        message: Message = {"type": "http.response.body", "body": data, "more_body": True}
        # While this holds bytes taken from the outbox, the flusher must not overtake them.
        sink = self._sink
        self._writing = True
        if sink is not None:
            sink.busy = True
        try:
            await send(message)
        finally:
            self._writing = False
            if sink is not None:
                sink.busy = False

    async def _write_catch_up(self, send: Send) -> None:
        subscriber = self.subscriber
        try:
            async for chunk in self.catch_up:
                if subscriber.closed:
                    return
                await self._write(send, chunk)
        except (OSError, asyncio.CancelledError):
            raise
        except Exception as exc:  # the log became unreadable mid-stream
            logger.warning("catch-up failed for %s: %s", subscriber.id, exc)
            subscriber.close(
                "unavailable",
                error_frame("unavailable", 503, "The activity log is unavailable; reconnect to resume."),
                discard_queued=True,
            )

    async def _write_live(self, send: Send) -> None:
        subscriber = self.subscriber
        while True:
            data = subscriber.take_all()
            if data is None:
                return
            if data:
                await self._write(send, data)
            else:
                await subscriber.wait()

    async def _watch_disconnect(self, receive: Receive) -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                self.subscriber.close("client_disconnected", discard_queued=True)
                return

    def _cut(self, transport: asyncio.Transport, subscriber: Subscriber) -> None:
        if transport.is_closing():
            return
        paused = self._sink is not None and self._sink.flow.write_paused
        if not (self._writing or paused):
            return  # the writer is free and will send the error frame itself
        # The socket is full (the writer waits on it, or would): put the error frame
        # behind what is buffered (the peer sees it if it ever reads), then close; abort
        # if it never does.
        data = subscriber.take_all() or b""
        transport.write(chunk(data) + b"0\r\n\r\n")
        transport.close()
        asyncio.get_running_loop().call_later(CUT_GRACE_SECONDS, transport.abort)
