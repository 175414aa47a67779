"""The ASGI side of one SSE stream: writes catch-up, then the subscriber's outbox.

A plain ASGI callable rather than Starlette's ``StreamingResponse``: it needs to write
whatever is queued as one coalesced write, to notice a client that went away without
waiting for the next write, and to cut a client that stopped reading. Once live on
uvicorn's httptools server it hands the connection to a protocol of the stream's own,
and its outbox to the per-loop flusher, which writes straight to the transport; the
request's task then ends (:mod:`syncstream.stream.direct`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any, cast

import orjson
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from syncstream.stream.direct import CUT_GRACE_SECONDS, Flusher, chunk, hand_over
from syncstream.stream.helpers import error_frame, retry_frame
from syncstream.stream.subscriber import Subscriber

logger = logging.getLogger("syncstream.stream")

#: Scope key of the list into which an :class:`SSEResponse` defers itself.
DEFERRED_KEY = "syncstream.deferred"

SSE_HEADERS: list[tuple[bytes, bytes]] = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


class StreamMiddleware:
    """Outermost middleware, and where streams run.

    It runs the streams themselves, with the server's own ``send`` (through which a
    stream reaches uvicorn's request cycle and its transport: direct writes, and
    aborting a connection stuck on a full socket): an :class:`SSEResponse` returned by
    a route defers itself to here, so the framework's whole call stack (middleware,
    routing, dependencies, the request) and its scope entries are released while the
    stream stays open for hours. That is most of the memory an idle connection would
    otherwise hold.

    Opening a stream (authentication, cursor checks, a few database reads) is the
    expensive part of its life, so at most ``max_opening`` stream requests run it at
    once; the rest wait here, cheaply. A reconnect storm then queues instead of piling
    thousands of half-built requests on the database pool and the heap.

    Those slots are shared by every client, so nothing a client does may hold one: a
    stream request that carries a body (which the client could then withhold) is
    refused before it takes a slot; a slot is taken once the request is complete and
    given back as the response starts (a client that does not read its answer holds
    nothing); and a request waits for a slot at most ``open_wait_seconds``, then gets
    ``503`` with ``Retry-After``. (tests/hardening/test_admission.py: 64 sockets that
    announced a body and sent none used to stop every stream.)
    """

    def __init__(
        self,
        app: Any,
        max_opening: int = 64,
        open_wait_seconds: float = 10.0,
        is_stream: Callable[[str], bool] | None = None,
    ) -> None:
        self.app = app
        #: The explicit stream marker: which paths are stream routes (none without one).
        self.is_stream = is_stream or _no_streams
        self.max_opening = max_opening
        self.open_wait_seconds = open_wait_seconds
        self._opening: asyncio.Semaphore | None = None
        self._flusher: Flusher | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # What the server and the middleware outside put in the scope: kept while a
        # stream runs (the access log reads ``raw_path`` as the response starts).
        server_keys = tuple(scope)
        deferred: list[SSEResponse] = []
        scope[DEFERRED_KEY] = deferred
        try:
            if self.is_stream(scope["path"]):
                if _carries_body(scope):
                    await _refuse(send, 400, "bad_request", "A stream request carries no body.", close=True)
                    return
                await self._gated(scope, receive, send)
            else:
                await self.app(scope, receive, send)
        except BaseException:
            for stream in deferred:
                stream.abandon()  # its quota lease: a stream that never runs holds nothing
            raise
        if deferred:
            stream = deferred.pop()
            del deferred
            _release_framework(scope, server_keys)
            del server_keys  # not held for as long as the stream runs
            if self._flusher is None:
                self._flusher = Flusher(asyncio.get_running_loop())
            await stream.run(send, receive, flusher=self._flusher)

    async def _gated(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the app in an opening slot, held from now until the response starts."""
        if self._opening is None:
            self._opening = asyncio.Semaphore(self.max_opening)
        gate = self._opening
        if not gate.locked():
            await gate.acquire()  # a free slot: taken at once, no deadline to arm
        else:
            try:
                async with asyncio.timeout(self.open_wait_seconds):
                    await gate.acquire()
            except TimeoutError:
                detail = "Too many streams are opening at once; try again shortly."
                await _refuse(send, 503, "unavailable", detail, retry_after=OPEN_RETRY_AFTER_SECONDS)
                return
        held = True

        def give_back() -> None:
            nonlocal held
            if held:
                held = False
                gate.release()

        async def send_and_give_back(message: Message) -> None:
            if message["type"] == "http.response.start":
                give_back()
            await send(message)

        try:
            await self.app(scope, receive, send_and_give_back)
        finally:
            give_back()


def _no_streams(_path: str) -> bool:
    return False


#: ``Retry-After`` of a stream request that found every opening slot busy for too long.
OPEN_RETRY_AFTER_SECONDS = 2


def _carries_body(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"transfer-encoding" or (name == b"content-length" and value.strip() not in (b"0", b"")):
            return True
    return False


async def _refuse(
    send: Send, status: int, type_: str, detail: str, *, retry_after: int | None = None, close: bool = False
) -> None:
    """An RFC 9457 problem, sent from here (the stream core imports nothing of the app's)."""
    body = orjson.dumps({"type": type_, "title": _TITLES[type_], "status": status, "detail": detail})
    headers = [(b"content-type", b"application/problem+json"), (b"content-length", b"%d" % len(body))]
    if retry_after is not None:
        headers.append((b"retry-after", b"%d" % retry_after))
    if close:  # the body the client announced was not read: the connection cannot be reused
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


_TITLES = {"bad_request": "Bad request", "unavailable": "Service unavailable"}


def _release_framework(scope: Scope, server_keys: tuple[str, ...]) -> None:
    """Drop what the framework added to the scope (app, router, route, endpoint, the
    request's state…), which the server's request cycle would otherwise keep alive for
    as long as the stream runs; keep what the server and outer middleware put there."""
    kept = {key: scope[key] for key in server_keys if key in scope}
    scope.clear()  # frees the grown table too, not only the entries
    scope.update(kept)


def _cycle(send: Send) -> object:
    """The server's request cycle behind ``send`` (uvicorn's ``send`` is its bound method)."""
    raw: Any = send
    # Starlette's CORSMiddleware (outside this one, so that streams get its headers)
    # hands on ``partial(self.send, send=<the server's send>)``.
    while isinstance(raw, functools.partial):
        raw = raw.keywords.get("send")
    return getattr(raw, "__self__", None)


def _transport(cycle: object) -> asyncio.Transport | None:
    transport = getattr(cycle, "transport", None)
    # Duck-typed: uvloop's transports do not derive from asyncio's classes.
    if transport is not None and all(
        callable(getattr(transport, name, None)) for name in ("write", "close", "abort", "is_closing")
    ):
        return cast(asyncio.Transport, transport)
    return None


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
        max_write_bytes: int | None = None,
        release: Callable[[], None] | None = None,
    ) -> None:
        self.subscriber = subscriber
        #: Gives back the stream's place in the quota, when the stream ends or never runs.
        self.release = release
        self.catch_up: AsyncIterator[bytes] | None = catch_up
        self.on_open: Callable[[Subscriber], None] | None = on_open
        self.on_close = on_close
        self.retry_ms = retry_ms
        #: What one write of the outbox takes at most (one frame always), when the
        #: stream's task writes it (a paused transport, or no direct path).
        self.max_write_bytes = max_write_bytes
        self.raw_headers = SSE_HEADERS + (extra_headers or [])
        self.status_code = 200
        self.background = None
        self._writing = False
        self._transport: asyncio.Transport | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        deferred = scope.get(DEFERRED_KEY)
        if isinstance(deferred, list):
            deferred.append(self)
            return
        await self.run(send, receive)

    async def run(self, send: Send, receive: Receive, *, flusher: Flusher | None = None) -> None:
        subscriber = self.subscriber
        # Registered before catch-up reads the log: what commits meanwhile is held,
        # not lost (see stream.catchup).
        assert self.on_open is not None, "a stream runs once"
        self.on_open(subscriber)
        self.on_open = None
        cycle = _cycle(send)
        self._transport = _transport(cycle)
        if self._transport is not None:
            subscriber.on_overflow = self._cut
        watcher = asyncio.create_task(self._watch_disconnect(receive))
        held = False
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            self.raw_headers = []  # sent: not held for as long as the stream runs
            # The retry hint goes out with catch-up's first chunk (often only the offset
            # frame): one write, one syscall, fewer per open.
            await self._write_catch_up(send, retry_frame(self.retry_ms))
            self.catch_up = None  # and with it the closures that read the log
            if flusher is not None and not subscriber.closed:
                held = self._hand_over(cycle, flusher, watcher)
            if held:
                return  # the connection is the stream's own now: this task ends
            await self._write_live(send)
        except OSError:
            subscriber.close("client_disconnected")
        finally:
            if not held:
                watcher.cancel()
                subscriber.on_overflow = None  # no cycle left for the collector to find
                subscriber.close(subscriber.close_reason or "ended")
                self.on_close(subscriber)
                self.abandon()
                with contextlib.suppress(OSError, RuntimeError):
                    await send({"type": "http.response.body", "body": b"", "more_body": False})

    def _hand_over(self, cycle: object, flusher: Flusher, watcher: asyncio.Task[None]) -> bool:
        """Give the live stream's connection to a protocol of its own (uvicorn's httptools
        server only), with what it must do at the end: nothing of this response, its task
        or the request is held from then on."""
        release, self.release = self.release, None
        if hand_over(cycle, self.subscriber, flusher, self.on_close, release) is None:
            self.release = release
            return False
        watcher.cancel()  # the protocol hears of a disconnect itself now
        return True

    async def _write_live(self, send: Send) -> None:
        """Write what the outbox holds until the subscriber closes, waiting for its own
        wake-up in between (a server whose connection cannot be handed over)."""
        subscriber = self.subscriber
        while (data := subscriber.take_all(self.max_write_bytes)) is not None:
            if data:
                await self._write(send, data)
            else:
                await subscriber.wait()

    def abandon(self) -> None:
        """Give back what the response holds without running it (or after it ran)."""
        release, self.release = self.release, None
        if release is not None:
            release()

    async def _write(self, send: Send, data: bytes) -> None:
        message: Message = {"type": "http.response.body", "body": data, "more_body": True}
        # While a write waits for a full socket, an overflow must cut the connection.
        self._writing = True
        try:
            await send(message)
        finally:
            self._writing = False

    async def _write_catch_up(self, send: Send, first: bytes) -> None:
        """Write ``first``, then catch-up's chunks: ``first`` with the first of them."""
        subscriber = self.subscriber
        try:
            if self.catch_up is not None:
                async for chunk in self.catch_up:
                    if subscriber.closed:
                        break
                    await self._write(send, first + chunk if first else chunk)
                    first = b""
        except (OSError, asyncio.CancelledError):
            raise
        except Exception as exc:  # the log became unreadable mid-stream
            logger.warning("catch-up failed for %s: %s", subscriber.id, exc)
            subscriber.close(
                "unavailable",
                error_frame("unavailable", 503, "The activity log is unavailable; reconnect to resume."),
                discard_queued=True,
            )
        if first:  # nothing was written: the hint still comes before anything else
            await self._write(send, first)

    async def _watch_disconnect(self, receive: Receive) -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                self.subscriber.close("client_disconnected", discard_queued=True)
                return

    def _cut(self, subscriber: Subscriber) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        if not self._writing:
            return  # the writer is free and will send the error frame itself
        # The socket is full (the writer waits on it, or would): put the error frame
        # behind what is buffered (the peer sees it if it ever reads), then close; abort
        # if it never does.
        data = subscriber.take_all() or b""
        transport.write(chunk(data) + b"0\r\n\r\n")
        transport.close()
        asyncio.get_running_loop().call_later(CUT_GRACE_SECONDS, transport.abort)
