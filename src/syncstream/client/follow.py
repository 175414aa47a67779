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
  :class:`~syncstream.client.Backoff` delay; 400/401/403/404 and a ``forbidden`` frame stop with an
  exception, since retrying cannot change the answer.
* ``must_refetch`` (409) means the cache built from this stream may be wrong. The application's
  ``on_must_refetch`` callback resets it and the stream restarts from ``-1``; without a callback
  :class:`~syncstream.client.MustRefetch` is raised. A second ``must_refetch`` before the restarted stream
  has caught up raises :class:`~syncstream.client.RefetchLoopError` instead of resetting again.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from contextlib import aclosing
from typing import TypeVar

import httpx
import pydantic

from syncstream.client.backoff import Backoff
from syncstream.client.cursors import CursorStore
from syncstream.client.errors import (
    BadRequest,
    Forbidden,
    MustRefetch,
    NotFound,
    ProblemError,
    ProtocolError,
    RefetchLoopError,
    StreamUnavailable,
    Unauthorized,
)
from syncstream.client.events import (
    CaughtUp,
    Change,
    Connected,
    Connecting,
    Disconnected,
    Heartbeat,
    Reset,
    StreamEvent,
    StreamState,
)
from syncstream.client.refusals import problem_from_frame, problem_from_response, retry_after_seconds
from syncstream.stream.messages import JsonPage, OffsetFrame, Problem, StreamMessage
from syncstream.stream.sse import ServerSentEvent, SSEParser

__all__ = ["Follower", "MustRefetchCallback", "stream_key"]

T = TypeVar("T")

#: Called with the :class:`MustRefetch` error when the server cannot continue from the cursor; it must
#: drop what the application cached from this stream. It may be a plain function or a coroutine function.
MustRefetchCallback = Callable[[MustRefetch], Awaitable[None] | None]

#: Query parameters the follower owns; they are not part of a stream's identity.
_POSITION_PARAMS = frozenset({"offset", "live", "limit"})
#: Statuses worth retrying: the server (or a proxy) is busy, restarting or briefly unable.
_TRANSIENT_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


def stream_key(url: httpx.URL) -> str:
    """The identity of a stream for cursor storage: the URL without the position parameters (``offset``,
    ``live``, ``limit``), with the rest sorted, so that SSE and JSON mode of one stream share a cursor
    and two filters (``entityTypes``) do not."""
    params = sorted((k, v) for k, v in url.params.multi_items() if k not in _POSITION_PARAMS)
    return str(url.copy_with(params=params, fragment=None))


def _is_newer(candidate: str, cursor: str | None) -> bool:
    return cursor is None or int(candidate) > int(cursor)


class TransientRefusal(Exception):
    """Internal: a refusal worth retrying (429/5xx), with the server's ``Retry-After``."""

    def __init__(self, problem: Problem, retry_after: float | None) -> None:
        super().__init__(str(problem))
        self.problem = problem
        self.retry_after = retry_after


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
    ) -> None:
        self.http = http
        url_offset = url.params.get("offset")
        self.url = url.copy_with(
            params=[(k, v) for k, v in url.params.multi_items() if k not in ("offset", "live")]
        )
        self.key = stream_key(url)
        self._headers: Callable[[], Mapping[str, str]] = headers or dict
        self._start = str(offset) if offset is not None else (url_offset or "-1")
        self.cursor_store = cursor_store
        self.on_must_refetch = on_must_refetch
        self.backoff = backoff or Backoff()
        #: Where the stream stands: the last change (or offset frame) received.
        self.cursor: str | None = None
        self.state = StreamState.CONNECTING
        #: The server's ``retry:`` hint, in seconds.
        self.server_retry: float | None = None
        self._saved: str | None = None
        self._after_reset = False
        self._reconnect = asyncio.Event()
        self._started = False

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
                problem: Problem | None = None
                network_error: httpx.TransportError | None = None
                retry_after: float | None = None
                reason = ""
                reconnect_now = False
                try:
                    request = self._request(sse=True)
                    response = await self.http.send(request, stream=True)
                    async with contextlib.AsyncExitStack() as stack:
                        stack.push_async_callback(response.aclose)
                        if response.status_code != 200:
                            await response.aread()
                            if await self._refused(response):
                                failures = 0
                                yield Reset(problem_from_response(response))
                                continue
                        content_type = response.headers.get("content-type", "")
                        if not content_type.startswith("text/event-stream"):
                            raise ProtocolError(
                                f"expected an event stream, got {content_type or 'no content type'!r}",
                                url=str(request.url),
                            )
                        self.state = StreamState.CATCHING_UP
                        yield Connected(cursor=self.cursor)
                        reason = "the server closed the stream"
                        frames = await stack.enter_async_context(aclosing(self._frames(response)))
                        async for frame in frames:
                            if frame.event == "change":
                                message = StreamMessage.model_validate_json(frame.data)
                                if not _is_newer(message.activity_id, self.cursor):
                                    continue  # a replayed duplicate: already delivered
                                self.cursor = message.activity_id
                                failures = 0
                                yield Change(message, frame.data)
                                await self.commit()
                            elif frame.event == "offset":
                                caught_up = OffsetFrame.model_validate_json(frame.data)
                                if caught_up.cursor is not None and _is_newer(caught_up.cursor, self.cursor):
                                    self.cursor = caught_up.cursor
                                self._after_reset = False
                                failures = 0
                                self.state = StreamState.LIVE
                                yield CaughtUp(cursor=self.cursor)
                                await self.commit()
                            elif frame.event == "ping":
                                failures = 0
                                yield Heartbeat()
                            elif frame.event == "error":
                                problem = problem_from_frame(frame.data)
                                if problem.type == "forbidden":
                                    raise Forbidden(str(problem), problem=problem, url=str(request.url))
                                # slow_consumer, unavailable, or a type this client does not know: the
                                # server ends the stream; resuming from the cursor loses nothing.
                                reason = problem.type
                                break
                            # Any other event type is a later extension of the contract: skipped.
                            if self._reconnect.is_set():
                                reason, reconnect_now = "reconnect requested", True
                                break
                except TransientRefusal as exc:
                    problem, retry_after, reason = exc.problem, exc.retry_after, str(exc.problem)
                except httpx.TransportError as exc:
                    network_error = exc
                    reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                except pydantic.ValidationError as exc:
                    raise ProtocolError(
                        f"a frame does not match the contract: {exc}", url=str(self.url)
                    ) from exc
                if reconnect_now:
                    failures = 0
                    continue
                failures += 1
                limit = self.backoff.max_attempts
                if limit is not None and failures > limit:
                    raise StreamUnavailable(
                        f"gave up after {failures} consecutive failed attempts: {reason}",
                        url=str(self.url),
                    )
                delay = self.backoff.delay(failures, server_retry=self.server_retry, retry_after=retry_after)
                self.state = StreamState.RECONNECTING
                yield Disconnected(reason=reason, retry_in=delay, problem=problem, error=network_error)
                # asyncio.timeout: 3.11's wait_for can swallow a cancellation.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._reconnect.wait()
        finally:
            self.state = StreamState.CLOSED

    async def pages(self, limit: int | None = None) -> AsyncGenerator[StreamMessage, None]:
        """Read the stream in JSON mode, page after page, until ``hasMore`` is false; then stop."""
        self._claim()
        await self._load()
        failures = 0
        self.state = StreamState.CATCHING_UP
        try:
            while True:
                offset = self.cursor if self.cursor is not None else self._start
                try:
                    request = self._request(sse=False, offset=offset, limit=limit)
                    response = await self.http.send(request)
                    if response.status_code != 200 and await self._refused(response):
                        failures = 0
                        continue
                    page = JsonPage.model_validate_json(response.content)
                except TransientRefusal as exc:
                    failures += 1
                    await self._wait(failures, str(exc.problem), exc.retry_after)
                    continue
                except httpx.TransportError as exc:
                    failures += 1
                    await self._wait(failures, f"{type(exc).__name__}: {exc}", None)
                    continue
                except pydantic.ValidationError as exc:
                    raise ProtocolError(
                        f"a page does not match the contract: {exc}", url=str(self.url)
                    ) from exc
                failures = 0
                for message in page.activities:
                    if not _is_newer(message.activity_id, self.cursor):
                        continue
                    self.cursor = message.activity_id
                    yield message
                    await self.commit()
                if page.cursor is not None and _is_newer(page.cursor, self.cursor):
                    self.cursor = page.cursor
                await self.commit()
                self._after_reset = False
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
        if self.cursor_store is not None and self.cursor is not None and self.cursor != self._saved:
            await self.cursor_store.save(self.key, self.cursor)
            self._saved = self.cursor

    # -- internals ---------------------------------------------------------------------------------------

    def _claim(self) -> None:
        if self._started:
            raise RuntimeError("a follower drives one iteration; open the stream again to restart it")
        self._started = True

    async def _load(self) -> None:
        if self.cursor_store is not None:
            stored = await self.cursor_store.load(self.key)
            if stored is not None:
                self.cursor = self._saved = stored

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
                params["offset"] = self._start
        else:
            headers["Accept"] = "application/json"
            params["offset"] = offset or "-1"
            if limit is not None:
                params["limit"] = str(limit)
        return self.http.build_request("GET", self.url.copy_with(params=params), headers=headers)

    async def _refused(self, response: httpx.Response) -> bool:
        """Classify a non-200 answer: raise what is fatal, raise :class:`TransientRefusal` for what is worth
        retrying, and return True when ``must_refetch`` was handled (restart from ``-1`` at once)."""
        problem = problem_from_response(response)
        status = response.status_code
        url = str(response.request.url)
        if status == 409 and problem.type == "must_refetch":
            await self._must_refetch(problem, url)
            return True
        if status in _TRANSIENT_STATUSES:
            raise TransientRefusal(problem, retry_after_seconds(response.headers.get("retry-after")))
        error_type: type[ProblemError] = {
            400: BadRequest,
            401: Unauthorized,
            403: Forbidden,
            404: NotFound,
        }.get(status, ProblemError)
        raise error_type(str(problem), problem=problem, url=url)

    async def _must_refetch(self, problem: Problem, url: str) -> None:
        requested = self.cursor if self.cursor is not None else self._start
        if self._after_reset or requested in ("-1", "now"):
            raise RefetchLoopError(
                f"the server answered must_refetch to a request from {requested}"
                + (" right after a reset" if self._after_reset else "")
                + f"; resetting again cannot help ({problem})",
                problem=problem,
                url=url,
            )
        error = MustRefetch(
            f"the server cannot continue from cursor {requested}: {problem.detail or problem.title}",
            problem=problem,
            url=url,
            cursor=requested,
        )
        if self.on_must_refetch is None:
            await self._forget_cursor()
            raise error
        # The application resets its cache first: if that fails, the stored cursor still says the cache
        # is stale, and the next run asks again instead of reading from -1 over an outdated cache.
        result = self.on_must_refetch(error)
        if inspect.isawaitable(result):
            await result
        await self._forget_cursor()
        self._after_reset = True

    async def _forget_cursor(self) -> None:
        self.cursor = self._saved = None
        self._start = "-1"
        if self.cursor_store is not None:
            await self.cursor_store.clear(self.key)

    async def _wait(self, failures: int, reason: str, retry_after: float | None) -> None:
        limit = self.backoff.max_attempts
        if limit is not None and failures > limit:
            raise StreamUnavailable(
                f"gave up after {failures} consecutive failed attempts: {reason}", url=str(self.url)
            )
        delay = self.backoff.delay(failures, server_retry=self.server_retry, retry_after=retry_after)
        await asyncio.sleep(delay)

    async def _frames(self, response: httpx.Response) -> AsyncGenerator[ServerSentEvent, None]:
        parser = SSEParser()
        async for chunk in response.aiter_bytes():
            for frame in parser.feed(chunk):
                yield frame
            if parser.retry is not None:
                self.server_retry = parser.retry / 1000
