"""Glue every stream type shares: parameters, cursor checks, JSON mode and SSE wiring.

A stream type (see ``sync/stream.py`` and ``pages/stream.py``) supplies its subscriber,
its filter and how to read its slice of the log; this module turns those into the
contract's two modes, so both streams behave the same at every edge.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import Request
from starlette.responses import Response

from syncstream import problems
from syncstream._access import MemberSubscriber
from syncstream.activities import log
from syncstream.activities.model import Activity, render_message
from syncstream.logs import request_id
from syncstream.runtime import Runtime
from syncstream.stream.catchup import CatchUpPage, replay
from syncstream.stream.cursor import (
    CursorOutOfRange,
    InvalidParameter,
    Offset,
    Resolved,
    parse_entity_types,
    parse_limit,
    parse_live,
    parse_offset,
    resolve,
)
from syncstream.stream.frames import SHUTDOWN_FRAME, error_frame
from syncstream.stream.helpers import change_frame
from syncstream.stream.manager import SubscriberManager
from syncstream.stream.quota import Lease, QuotaExceeded, address_holder
from syncstream.stream.response import SSEResponse
from syncstream.stream.subscriber import Subscriber

logger = logging.getLogger("syncstream.stream")

#: Reads activities after an ID, already narrowed (in SQL) to what the caller may see:
#: ``read_after(conn, after, limit, max_bytes)``, as :func:`syncstream.activities.log.read_after`
#: does (a :class:`~syncstream.activities.log.LogPage` tells when the byte bound cut it).
#: The connection is the caller's: the pruning check after the read goes on it too.
ReadAfter = Callable[[AsyncConnection, int, int, int], Awaitable[list[Activity]]]


#: How long catch-up waits for this process's tailer to route rows its read found.
TAILER_WAIT_SECONDS = 0.25


def _cut(rows: list[Activity]) -> bool:
    return isinstance(rows, log.LogPage) and rows.cut


Accept = Callable[[Activity], bool]


@dataclass(frozen=True, slots=True)
class StreamParams:
    offset: Offset
    live: bool
    entity_types: frozenset[str] | None
    limit: int


def parse_params(request: Request, known_types: Collection[str]) -> StreamParams:
    query = request.query_params
    try:
        for name in ("offset", "live", "entityTypes", "limit"):
            if len(query.getlist(name)) > 1:
                raise InvalidParameter(name, f"{name} may be given only once")
        return StreamParams(
            offset=parse_offset(query.get("offset"), request.headers.get("last-event-id")),
            live=parse_live(query.get("live")),
            entity_types=parse_entity_types(query.get("entityTypes"), known_types),
            limit=parse_limit(query.get("limit")),
        )
    except InvalidParameter as exc:
        raise problems.bad_request(exc.detail) from exc


async def resolve_offset(runtime: Runtime, offset: Offset) -> Resolved:
    # The newest committed ID bounds the offset, and catch-up waits (briefly) for this
    # process's tailer to route it: a client that wrote, then reconnected, finds its
    # writes in catch-up (see open_sse). "now", the usual, needs no pruning.
    inline = runtime.database.inline
    if offset.kind != "now" and inline is not None:
        # The usual resume: two point reads, made on this thread (db/inline_read.py).
        found = log.newest_and_pruned_inline(inline)
        if found is not None:
            return _resolved(offset, *found)
    async with runtime.database.reader.connect() as conn:
        newest = await log.newest_id(conn)
        pruned = 0 if offset.kind == "now" else await log.pruned_through(conn)
    return _resolved(offset, newest, pruned)


def _resolved(offset: Offset, newest: int, pruned: int) -> Resolved:
    try:
        return resolve(offset, newest=newest, pruned_through=pruned)
    except CursorOutOfRange as exc:
        raise problems.must_refetch(str(exc)) from exc


async def json_page(
    runtime: Runtime, read_after: ReadAfter, accept: Accept, resolved: Resolved, limit: int
) -> Response:
    """One page of catch-up as JSON; ``cursor`` goes back in as ``offset`` for the next.

    The offset was checked against pruned history before the read; a prune that ran
    between that check and the read would leave a silent gap, so an explicit cursor is
    checked again after it (as SSE catch-up does between its pages).

    A page holds at most ``limit`` activities and at most ``SYNCSTREAM_PAGE_BYTES`` of
    them (but always one): it may hold fewer than ``limit`` with ``hasMore`` true.
    """
    async with runtime.database.reader.connect() as conn:
        rows = await read_after(conn, resolved.after, limit + 1, runtime.settings.page_bytes)
        pruned = await log.pruned_through(conn) if resolved.after > 0 else 0
    if pruned > resolved.after:
        raise problems.must_refetch(
            f"history was pruned through {pruned} while this page was read; start again from -1"
        )
    has_more = len(rows) > limit or _cut(rows)
    messages = [render_message(a) for a in rows[:limit] if accept(a)]
    cursor = rows[min(len(rows), limit) - 1].id if rows else resolved.reported
    cursor_json = b"null" if cursor is None else b'"%d"' % cursor
    body = b'{"activities":[%s],"cursor":%s,"hasMore":%s}' % (
        b",".join(messages),
        cursor_json,
        b"true" if has_more else b"false",
    )
    metrics = runtime.metrics
    metrics.catchup_pages.labels("json").inc()
    metrics.catchup_activities.labels("json").inc(len(messages))
    metrics.catchup_bytes.labels("json").inc(len(body))
    return Response(body, media_type="application/json")


def open_sse(
    runtime: Runtime,
    subscriber: Subscriber,
    *,
    stream: str,
    read_after: ReadAfter,
    accept: Accept,
    resolved: Resolved | None,
    prepare: Callable[[], Awaitable[Resolved | None]] | None = None,
    holders: Sequence[tuple[str, str]] = (),
) -> SSEResponse:
    """The SSE response for a subscriber; it registers itself before catch-up reads.

    ``prepare`` runs once registered and before catch-up: the place to load state that
    live events will keep current from then on (the org stream's memberships). It may
    also resolve the offset there (``resolved`` None), having moved the cursor to it.
    """
    if runtime.closing:
        raise problems.unavailable("The server is shutting down; reconnect to another.", retry_after=1)
    lease = take_lease(runtime, holders)
    page_size = runtime.settings.catchup_page_size
    page_bytes = runtime.settings.page_bytes
    metrics = runtime.metrics
    tailer = runtime.tailer

    # Committed past the cursor before the request: for catch-up to wait for (briefly).
    committed = resolved.newest if resolved is not None and resolved.newest > resolved.after else 0

    async def fetch_page(after: int) -> CatchUpPage:
        # Catch-up stops where this process's tailer is: what it has routed, its
        # internal events (membership changes) included, has been applied to the
        # subscriber, so nothing newer can be judged on stale permissions. But first
        # the tailer gets a moment to reach what was committed before the request.
        nonlocal committed
        until = tailer.position
        if committed > until:
            until = await routed_through(committed)
        committed = 0
        if after >= until:
            # Nothing this process has routed is newer: the read could only return rows
            # to drop (the usual ``offset=now``), so skip it and its pruning check.
            return CatchUpPage([], after, complete=True)
        held = tailer.recent.between(after, until, page_size)
        if held:
            # A resume a little behind: the tailer still holds everything after the
            # cursor, as routed (so ``accept``, the live filter, judges it as live would).
            return page_of(held, after, until)
        # Bounded by bytes as well as rows: replay writes each page (waiting while the
        # transport is paused) before it reads the next, so a stream holds one page.
        # One connection for the read and the pruning check after it.
        async with runtime.database.reader.connect() as conn:
            rows = await read_after(conn, after, page_size, page_bytes)
            pruned = await log.pruned_through(conn)
        if pruned_past(after, pruned):
            return CatchUpPage([], after, complete=False)  # the subscriber is closed: replay ends
        complete = len(rows) < page_size and not _cut(rows)
        if rows and rows[-1].id > until:
            until = await routed_through(rows[-1].id)
        if rows and rows[-1].id > until:
            rows = [a for a in rows if a.id <= until]
            complete = True
        frames = [(a.id, change_frame(a.id, render_message(a))) for a in rows if accept(a)]
        count(frames, sum(len(frame) for _, frame in frames))
        return CatchUpPage(frames, rows[-1].id if rows else after, complete=complete)

    def page_of(held: list[Activity], after: int, until: int) -> CatchUpPage:
        frames: list[tuple[int, bytes]] = []
        size = 0
        scanned = after
        for activity in held:
            if accept(activity):
                frame = change_frame(activity.id, render_message(activity))
                # Within the byte bound as a read of the log is (but one frame always).
                if frames and size + len(frame) > page_bytes:
                    break
                frames.append((activity.id, frame))
                size += len(frame)
            scanned = activity.id
        count(frames, size)
        return CatchUpPage(frames, scanned, complete=scanned >= until)

    def count(frames: list[tuple[int, bytes]], size: int) -> None:
        metrics.messages_sent.inc(len(frames))
        metrics.catchup_pages.labels("sse").inc()
        metrics.catchup_activities.labels("sse").inc(len(frames))
        metrics.catchup_bytes.labels("sse").inc(size)

    async def routed_through(newest: int) -> int:
        """Where the tailer is once it has routed ``newest``, or after a short wait.

        The log holds rows the tailer has not routed yet (the offset's resolution or a
        catch-up read found them), committed a moment ago: perhaps by another process,
        whose doorbell is on its way, or written to the database directly. Woken to read
        them at once, the tailer routes them, and they stay in catch-up, before the
        ``offset`` frame, as a client that wrote them before it reconnected expects; a
        tailer that lags longer leaves them to arrive live."""
        tailer.poke()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(TAILER_WAIT_SECONDS):
                await tailer.wait_for(newest)
        return tailer.position

    def pruned_past(after: int, pruned: int) -> bool:
        """Whether an operator pruned history beyond ``after`` since the cursor was checked.

        A slow client can take minutes over its catch-up, and ``activities prune`` may run
        meanwhile: the read just made would then have skipped what was deleted, a silent
        gap. Checked after each read (a prune committed before it is seen here), the stream
        ends as a too-old cursor is refused, with ``must_refetch``; the frames sent so far
        were a gapless prefix. (tests/hardening/test_retention.py found the gap.)
        """
        if pruned <= after:
            return False
        detail = f"history was pruned through {pruned} while this stream caught up; start again from -1"
        subscriber.close("must_refetch", error_frame("must_refetch", 409, detail), discard_queued=True)
        return True

    async def catch_up() -> AsyncIterator[bytes]:
        start = resolved
        if prepare is not None:
            start = await prepare() or start
        assert start is not None, "prepare resolves the offset when the route could not"
        async for chunk in replay(subscriber, fetch_page, start.reported):
            yield chunk

    def opened(sub: Subscriber) -> None:
        runtime.subscribers.register(sub)
        if isinstance(sub, MemberSubscriber):  # found by membership, org and sign-out events
            runtime.access.add(sub)
        if runtime.closing:  # opened while shutdown began: end it like the others
            sub.close("shutdown", SHUTDOWN_FRAME)
        metrics.connections.labels(stream).inc()
        after = "now" if resolved is None else resolved.after
        logger.info("stream open stream=%s subscriber=%s after=%s", stream, sub.id, after)

    def closed(sub: Subscriber) -> None:
        runtime.subscribers.unregister(sub)
        if isinstance(sub, MemberSubscriber):
            runtime.access.discard(sub)
        if sub.close_reason == "slow_consumer":
            metrics.slow_consumer_disconnects.inc()
        log = logger.warning if sub.close_reason == "slow_consumer" else logger.info
        log(
            "stream closed stream=%s subscriber=%s reason=%s cursor=%s",
            stream,
            sub.id,
            sub.close_reason,
            sub.cursor,
        )

    return SSEResponse(
        subscriber,
        catch_up(),
        on_open=opened,
        on_close=closed,
        retry_ms=runtime.settings.retry_ms,
        max_write_bytes=page_bytes,
        # A stream's response start bypasses RequestIdMiddleware (it is sent from
        # StreamMiddleware, outside it), so the echo is added here.
        extra_headers=[(b"x-request-id", request_id.get().encode())],
        release=lease,
    )


def stream_holders(request: Request, user_id: str | None = None) -> list[tuple[str, str]]:
    """Whom a stream counts against: its client's address (an IPv6 /64) and, if signed
    in, its user. The address is the one uvicorn reports: behind a proxy, the one the
    proxy forwards (``X-Forwarded-For`` from ``--forwarded-allow-ips``)."""
    holders = [("address", address_holder(request.client.host if request.client else "unknown"))]
    if user_id is not None:
        holders.append(("user", user_id))
    return holders


#: Retry-After of a stream refused by its user's or address's quota: until one of the
#: holder's streams ends, which a retry cannot hurry.
QUOTA_RETRY_AFTER_SECONDS = 10
#: Retry-After of a stream refused by the process-wide cap (another process may have room).
FULL_RETRY_AFTER_SECONDS = 5


def take_lease(runtime: Runtime, holders: Sequence[tuple[str, str]]) -> Lease:
    """A place for one more stream, or the problem that refuses it."""
    try:
        return runtime.quota.acquire(holders)
    except QuotaExceeded as exc:
        if exc.kind == "process":
            logger.warning("stream refused: this process holds its maximum of %d streams", exc.limit)
            raise problems.unavailable(
                f"This server holds its maximum of {exc.limit} streams; try again later.",
                retry_after=FULL_RETRY_AFTER_SECONDS,
            ) from exc
        who = "user" if exc.kind == "user" else "client address"
        raise problems.too_many_requests(
            f"This {who} has {exc.limit} streams open, the most allowed; close one and try again.",
            QUOTA_RETRY_AFTER_SECONDS,
        ) from exc


Router = Callable[[SubscriberManager[Subscriber], Activity], int]


def measured(runtime: Runtime, router: Router) -> Callable[[Activity], None]:
    """A bus listener that runs ``router`` (a ``route_to_*`` function) and records it in
    the metrics: time to route, delay since the write, recipients."""
    manager = runtime.subscribers
    metrics = runtime.metrics

    def route(activity: Activity) -> None:
        started = time.perf_counter()
        sent = router(manager, activity)
        metrics.routing_seconds.observe(time.perf_counter() - started)
        metrics.commit_to_route_seconds.observe(max(0.0, time.time() - activity.created_at.timestamp()))
        metrics.activities_routed.inc()
        metrics.messages_sent.inc(sent)

    return route
