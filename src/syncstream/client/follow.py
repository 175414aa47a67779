"""Following one stream URL: connect, read Server-Sent Events, resume after drops, page JSON mode.

This is the engine under every helper of :class:`~syncstream.client.SyncClient` and under
``syncstream tail``: it knows the contract's streams in general (any URL with ``offset``/``live``
parameters and ``change``/``offset``/``ping``/``error`` frames), not which stream it is reading. It yields
*events* (connecting, connected, a change, caught up, disconnected, …) rather than only messages, so a
caller that shows the connection (``tail``, a status bar) and one that only wants changes share the same
resume logic.

Resuming is what makes a stream client correct, so the rules are spelled out here:

* The cursor is the ID of the last ``change`` received, or the ``offset`` frame's cursor when that is newer
  (after ``offset=now`` it is the resolved newest ID, which must not be lost to a drop before the first
  change). Every reconnection sends it as ``Last-Event-ID`` (and as ``offset``, for proxies that drop the
  header), so nothing is lost or repeated; a change at or below the cursor is dropped as a duplicate in
  case something between server and client replays.
* Drops, clean closes, 429/5xx and ``slow_consumer``/``unavailable`` error frames reconnect after a
  :class:`~syncstream.client.Backoff` delay (the first within half a second); an ``event: close`` frame (a
  server shutting down) reconnects at once. 400/401/403/404 and a ``forbidden`` frame stop with an
  exception, since retrying cannot change the answer.
* ``must_refetch`` (409) means the cache built from this stream may be wrong. The application's
  ``on_must_refetch`` callback resets it and the stream restarts from ``-1``; without a callback
  :class:`~syncstream.client.MustRefetch` is raised. A second ``must_refetch`` before the restarted stream
  has caught up raises :class:`~syncstream.client.RefetchLoopError` instead of resetting again.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from contextlib import aclosing

import httpx
import pydantic

from syncstream.client.backoff import Backoff
from syncstream.client.cursors import CursorStore
from syncstream.client.errors import NotAStream, ProtocolError, StreamUnavailable
from syncstream.client.events import (
    CaughtUp,
    Change,
    Connected,
    Connecting,
    Disconnected,
    Reset,
    StreamEvent,
    StreamState,
)
from syncstream.client.frames import ConnectionEnd, interpret
from syncstream.client.position import MustRefetchCallback, Position, call_back
from syncstream.client.refusals import problem_from_response
from syncstream.client.wire import Transient, is_newer, raise_for_refusal, stream_key
from syncstream.stream.messages import JsonPage, StreamMessage
from syncstream.stream.sse import ServerSentEvent, SSEParser

__all__ = [
    "ConnectedCallback",
    "DisconnectedCallback",
    "Follower",
    "MustRefetchCallback",
    "stream_key",
]

#: Called when the server accepted a (re)connection, before its catch-up is read.
ConnectedCallback = Callable[[Connected], Awaitable[None] | None]
#: Called when a connection ended or could not be made, before the wait for the next attempt.
DisconnectedCallback = Callable[[Disconnected], Awaitable[None] | None]


class Follower:
    """The state of one followed stream: its URL, cursor, store and reconnection policy.

    Use it through :class:`Subscription` (what :class:`~syncstream.client.SyncClient` returns); one follower
    drives one iteration.

    Args:
        http: The HTTP client; its timeouts apply (a read timeout longer than the server's keep-alive
            interval detects a dead connection).
        url: The stream's absolute URL. Its ``offset`` parameter, if any, is the starting point; ``live``
            and ``limit`` are managed here.
        headers: Called before every request, so a token changed on the client is used on the next
            reconnection.
        offset: Where to start when no cursor is stored: ``"-1"`` (all history, the default), ``"now"``, or
            an activity ID. A stored cursor wins, because it is where this application really stopped.
        cursor_store: Where the cursor is persisted, under :func:`stream_key` of ``url``.
        on_must_refetch: See :data:`MustRefetchCallback`.
        backoff: The reconnection policy.
        on_connected: See :data:`ConnectedCallback`.
        on_disconnected: See :data:`DisconnectedCallback`.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        url: httpx.URL,
        *,
        headers: Callable[[], Mapping[str, str]] | None = None,
        offset: str | int | None = None,
        cursor_store: CursorStore | None = None,
        on_must_refetch: MustRefetchCallback | None = None,
        backoff: Backoff | None = None,
        on_connected: ConnectedCallback | None = None,
        on_disconnected: DisconnectedCallback | None = None,
    ) -> None:
        self.http = http
        url_offset = url.params.get("offset")
        self.url = url.copy_with(
            params=[(k, v) for k, v in url.params.multi_items() if k not in ("offset", "live")]
        )
        self._headers: Callable[[], Mapping[str, str]] = headers or dict
        start = str(offset) if offset is not None else (url_offset or "-1")
        self.position = Position(stream_key(url), start, cursor_store, on_must_refetch)
        self.on_connected = on_connected
        self.on_disconnected = on_disconnected
        self.backoff = backoff or Backoff()
        self.state = StreamState.CONNECTING
        #: The server's ``retry:`` hint, in seconds.
        self.server_retry: float | None = None
        self._reconnect = asyncio.Event()
        self._started = False
        #: When (monotonic) the current run of failures began; None while the stream is healthy.
        self._outage_start: float | None = None

    @property
    def key(self) -> str:
        """The stream's key in the cursor store."""
        return self.position.key

    @property
    def cursor(self) -> str | None:
        """Where the stream stands: the last change (or offset frame) received."""
        return self.position.cursor

    @cursor.setter
    def cursor(self, value: str | None) -> None:
        self.position.cursor = value

    # -- the two modes ---------------------------------------------------------------------------------

    async def events(self) -> AsyncGenerator[StreamEvent, None]:
        """Follow the stream in SSE mode for ever (or until a fatal error), yielding every event."""
        self._claim()
        await self._load()
        failures = 0
        try:
            while True:
                self.state = StreamState.CONNECTING
                self._reconnect.clear()
                yield Connecting(attempt=failures + 1, cursor=self.cursor)
                end = ConnectionEnd()
                async with aclosing(self._connection(end)) as connection:
                    async for event in connection:
                        yield event
                if end.delivered:
                    failures, self._outage_start = 0, None
                if end.server_closing and self._outage_start is not None:
                    # Closed again before anything arrived (a server still draining took the reconnection):
                    # paced like a failure, so no tight loop.
                    end.at_once = False
                if end.at_once:
                    failures = 0
                    if end.server_closing:
                        self._outage_start = time.monotonic()
                if end.at_once:
                    if end.server_closing:
                        self.state = StreamState.RECONNECTING
                        disconnected = Disconnected(reason=end.reason, retry_in=0.0, problem=end.problem)
                        await call_back(self.on_disconnected, disconnected)
                        yield disconnected
                    continue
                failures += 1
                delay = self._delay(failures, end.reason, end.retry_after, unreachable=end.unreachable)
                self.state = StreamState.RECONNECTING
                disconnected = Disconnected(
                    reason=end.reason, retry_in=delay, problem=end.problem, error=end.error
                )
                await call_back(self.on_disconnected, disconnected)
                yield disconnected
                # asyncio.timeout: 3.11's wait_for can swallow a cancellation.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._reconnect.wait()
        finally:
            self.state = StreamState.CLOSED

    async def _connection(self, end: ConnectionEnd) -> AsyncGenerator[StreamEvent, None]:
        """One connection: yields what it receives, and records in ``end`` why it ended. Raises what is
        fatal."""
        try:
            request = self._request(sse=True)
            response = await self.http.send(request, stream=True)
            async with contextlib.AsyncExitStack() as stack:
                stack.push_async_callback(response.aclose)
                if response.status_code != 200:
                    await response.aread()
                    if await self._refused(response):
                        end.at_once = True
                        yield Reset(problem_from_response(response))
                        return
                content_type = response.headers.get("content-type", "")
                if not content_type.startswith("text/event-stream"):
                    raise NotAStream(
                        f"expected an event stream, got {content_type or 'no content type'!r}",
                        content_type=content_type,
                        url=str(request.url),
                    )
                self.state = StreamState.CATCHING_UP
                connected = Connected(cursor=self.cursor)
                await call_back(self.on_connected, connected)
                yield connected
                end.reason = "the server closed the stream"
                frames = await stack.enter_async_context(aclosing(self._frames(response)))
                async for frame in frames:
                    event = interpret(frame, self.position, end, str(request.url))
                    if isinstance(event, CaughtUp):
                        self.state = StreamState.LIVE
                    if event is not None:
                        end.delivered = True
                        yield event
                        if isinstance(event, Change | CaughtUp):
                            await self.commit()
                    if end.problem is not None or end.server_closing:
                        break
                    if self._reconnect.is_set():
                        end.reason, end.at_once = "reconnect requested", True
                        break
        except Transient as exc:
            end.problem, end.retry_after, end.reason = exc.problem, exc.retry_after, str(exc.problem)
        except httpx.TransportError as exc:
            end.error = exc
            end.reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        except pydantic.ValidationError as exc:
            raise ProtocolError(f"a frame does not match the contract: {exc}", url=str(self.url)) from exc

    async def pages(self, limit: int | None = None) -> AsyncGenerator[StreamMessage, None]:
        """Read the stream in JSON mode, page after page, until ``hasMore`` is false; then stop."""
        self._claim()
        await self._load()
        failures = 0
        self.state = StreamState.CATCHING_UP
        try:
            while True:
                offset = self.position.requested
                try:
                    request = self._request(sse=False, offset=offset, limit=limit)
                    response = await self.http.send(request)
                    if response.status_code != 200 and await self._refused(response):
                        failures = 0
                        continue
                    page = JsonPage.model_validate_json(response.content)
                except Transient as exc:
                    failures += 1
                    await asyncio.sleep(self._delay(failures, str(exc.problem), exc.retry_after))
                    continue
                except httpx.TransportError as exc:
                    failures += 1
                    reason = f"{type(exc).__name__}: {exc}"
                    await asyncio.sleep(self._delay(failures, reason, None, unreachable=True))
                    continue
                except pydantic.ValidationError as exc:
                    raise ProtocolError(
                        f"a page does not match the contract: {exc}", url=str(self.url)
                    ) from exc
                failures, self._outage_start = 0, None
                for message in page.activities:
                    if not is_newer(message.activity_id, self.cursor):
                        continue
                    self.cursor = message.activity_id
                    yield message
                    await self.commit()
                if page.cursor is not None and is_newer(page.cursor, self.cursor):
                    self.cursor = page.cursor
                await self.commit()
                self.position.after_reset = False
                if not page.has_more:
                    return
                if page.cursor is None or page.cursor == offset:
                    raise ProtocolError(
                        f"the page after {offset} has more but its cursor does not advance", url=str(self.url)
                    )
        finally:
            self.state = StreamState.CLOSED

    # -- control ----------------------------------------------------------------------------------------

    def reconnect(self) -> None:
        """Drop the current connection and resume from the cursor at once (skipping any backoff wait).

        For when the application knows the connection is stale (the network changed, the machine woke up)
        or wants a new token used. It takes effect before the next item is delivered; from another task,
        as soon as the server sends its next frame (at the latest, the keep-alive ping).
        """
        self._reconnect.set()

    async def commit(self) -> None:
        """Persist the cursor of the last item delivered (the application has processed it)."""
        await self.position.commit()

    # -- internals ---------------------------------------------------------------------------------------

    def _claim(self) -> None:
        if self._started:
            raise RuntimeError("a follower drives one iteration; open the stream again to restart it")
        self._started = True

    async def _load(self) -> None:
        await self.position.load()

    def _request(self, *, sse: bool, offset: str | None = None, limit: int | None = None) -> httpx.Request:
        headers = dict(self._headers())
        params = dict(self.url.params)
        if sse:
            headers["Accept"] = "text/event-stream"
            headers["Cache-Control"] = "no-cache"
            params["live"] = "sse"
            if self.cursor is not None:
                # Last-Event-ID is what the contract resumes from; the same value as offset survives a proxy
                # that strips unknown headers.
                headers["Last-Event-ID"] = self.cursor
                params["offset"] = self.cursor
            else:
                params["offset"] = self.position.start
        else:
            headers["Accept"] = "application/json"
            params["offset"] = offset or "-1"
            if limit is not None:
                params["limit"] = str(limit)
        return self.http.build_request("GET", self.url.copy_with(params=params), headers=headers)

    async def _refused(self, response: httpx.Response) -> bool:
        """Classify a non-200 answer: raise what is fatal, raise :class:`Transient` for what is worth
        retrying, and return True when ``must_refetch`` was handled (restart from ``-1`` at once)."""
        problem = raise_for_refusal(response)
        await self.position.must_refetch(problem, str(response.request.url))
        return True

    def _delay(
        self, failures: int, reason: str, retry_after: float | None, *, unreachable: bool = False
    ) -> float:
        """The wait before the next attempt; raises once ``max_attempts`` consecutive attempts failed.
        ``unreachable``: the server could not be reached or the connection ended (not a 429/5xx)."""
        limit = self.backoff.max_attempts
        if limit is not None and failures > limit:
            raise StreamUnavailable(
                f"gave up after {failures} consecutive failed attempts: {reason}", url=str(self.url)
            )
        now = time.monotonic()
        if self._outage_start is None:
            self._outage_start = now
        return self.backoff.delay(
            failures,
            server_retry=self.server_retry,
            retry_after=retry_after,
            outage=now - self._outage_start if unreachable else None,
        )

    async def _frames(self, response: httpx.Response) -> AsyncGenerator[ServerSentEvent, None]:
        parser = SSEParser()
        async for chunk in response.aiter_bytes():
            for frame in parser.feed(chunk):
                yield frame
            if parser.retry is not None:
                self.server_retry = parser.retry / 1000
