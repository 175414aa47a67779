"""``offset=now`` and live delivery agree in every interleaving (issue 11, item 9).

Seen from outside: with 16 writers committing while streams opened with ``offset=now``,
a stream's ``offset`` frame named activity N as its cursor and N then arrived live; a
client that dropped right after the ``offset`` frame would resume after N. Here the
interleaving is controlled rather than hoped for: the real pages route, a real SQLite
log, the real bus and the real log tailer, whose reads (``drain``) run only where the
schedule says, as do the commits. Every point where the open can be overtaken is a
point of the schedule: before the route (which reads the log position), between the
route and registration, between registration and catch-up (the response head), after
the memberships read, during catch-up's writes (the first carries the ``retry`` frame),
and after the ``offset`` frame.

Whatever the schedule, the stream must deliver, after its ``offset`` frame, exactly the
activities above the frame's cursor, each once, in order; and nothing at or below it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request

from syncstream import StreamSlice, Syncstream, _streams, open_slice
from syncstream.activities import log
from syncstream.activities.model import NewActivity
from syncstream.activities.writer import WriteTransaction
from syncstream.auth.sessions import Caller, Memberships
from syncstream.config import Settings
from syncstream.db.migrate import upgrade
from syncstream.db.schema import Membership, Organization, User
from syncstream.db.types import utcnow
from syncstream.modules.attachments.entity import ATTACHMENT
from syncstream.modules.pages.entity import PAGE
from syncstream.permissions import Access, Grant
from syncstream.runtime import Runtime
from syncstream.stream.response import SSEResponse
from syncstream.stream.sse import SSEParser

POINTS = ("before_route", "before_registration", "head", "retry", "prepare", "catch_up", "after_offset")
#: "org-cached": the org stream of a caller whose membership snapshot is current (as one
#: from the caller cache is): it reads nothing once registered, and "now" is the tailer's.
STREAMS = ("pages", "org", "org-cached")
ORG = "org_now"
CALLER = Caller(
    user_id="u_now",
    email="now@example.test",
    name="Now",
    role="user",
    created_at=utcnow(),
    session_id="s_now",
    access=Access("u_now", False, (Grant(ORG, None, "admin"),)),
    session_started=utcnow().timestamp(),
    session_last_used=utcnow().timestamp(),
)
#: What happens at a point, in order: "w" commits one page edit, "d" lets the tailer read
#: the log and route what it finds (as a doorbell would make it do, at any moment).
ACTIONS = st.lists(st.sampled_from("wd"), max_size=3).map("".join)


@pytest.fixture(scope="module")
def directory(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("now")


@pytest.fixture
async def runtime(directory: Path) -> AsyncIterator[Runtime]:
    # The built-in domain, wired as the server wires it: its types routed by the generic router.
    sync = Syncstream(Settings(database_url=f"sqlite:///{directory / 'now.db'}"))
    sync.add(ATTACHMENT, auto=False)
    sync.add(PAGE, auto=False)
    runtime = sync.runtime
    await upgrade(runtime.database)
    async with AsyncSession(runtime.database.writer) as session, session.begin():
        if await session.get(Organization, ORG) is None:
            now = utcnow()
            session.add(
                User(id="u_now", email="now@example.test", name="Now", password_hash="-", created_at=now)
            )
            session.add(Organization(id=ORG, name="Now", slug="now", created_at=now))
            await session.flush()
            session.add(
                Membership(id="m_now", user_id="u_now", organization_id=ORG, role="admin", created_at=now)
            )
    # The tailer is not started: it reads the log only when a schedule says so.
    async with runtime.database.reader.connect() as conn:
        runtime.tailer.position = await log.newest_id(conn)
    yield runtime
    await runtime.database.dispose()


def now_request(path: str) -> Request:
    scope = {
        "type": "http",
        "method": "GET",
        "path": path,
        "query_string": b"offset=now&live=sse",
        "headers": [],
    }
    return Request(scope)


class Schedule:
    def __init__(self, runtime: Runtime, stream: str, actions: dict[str, str]) -> None:
        self.runtime = runtime
        self.stream = stream
        self.actions = actions
        self.done: set[str] = set()
        self.committed: list[int] = []

    async def at(self, point: str) -> None:
        if point in self.done:
            return
        self.done.add(point)
        for action in self.actions.get(point, ""):
            if action == "w":
                self.committed.append(await edit(self.runtime, self.stream))
            else:
                await self.runtime.tailer._drain()


async def edit(runtime: Runtime, stream: str) -> int:
    def record(tx: WriteTransaction) -> int:
        if stream == "pages":
            data = {"id": "pg_now", "title": "t", "content": "c"}
            return tx.record(NewActivity("update", "page", "pg_now", None, None, None, data, ["content"]))
        data = {"id": "at_now", "name": "n"}
        return tx.record(NewActivity("update", "attachment", "at_now", ORG, None, "u_now", data, ["name"]))

    return await runtime.writer.run(record)


async def open_now(runtime: Runtime, stream: str, schedule: Schedule) -> SSEResponse:
    """The streams' real open path (``open_slice``, what every stream route returns), at
    ``offset=now``; the org stream's memberships read (made once registered, with the log
    position) is followed by the "prepare" point."""
    if stream == "pages":
        request = now_request("/pages/stream")
        response = await open_slice(runtime, request, StreamSlice.public(), types={"page"}, stream="pages")
    elif stream == "org-cached":
        # As if the caller had just been authenticated: its snapshot as of the log's end.
        async with runtime.database.reader.connect() as conn:
            as_of = await log.newest_id(conn)
        snapshot = Memberships((("m_now", Grant(ORG, None, "admin")),), as_of, runtime.callers.generation)
        request = now_request(f"/organizations/{ORG}/sync/stream")
        where = StreamSlice(ORG, None, replace(CALLER, memberships=snapshot))
        response = await open_slice(runtime, request, where, types={"attachment"}, stream="org")
    else:
        read = _streams.load_memberships

        async def memberships_then_hold(*args: Any) -> Any:
            result = await read(*args)
            await schedule.at("prepare")
            return result

        _streams.load_memberships = memberships_then_hold  # type: ignore[assignment]
        try:
            request = now_request(f"/organizations/{ORG}/sync/stream")
            where = StreamSlice(ORG, None, CALLER)
            response = await open_slice(runtime, request, where, types={"attachment"}, stream="org")
        finally:
            _streams.load_memberships = read  # type: ignore[assignment]
    assert isinstance(response, SSEResponse)
    return response


async def run_schedule(
    runtime: Runtime, stream: str, actions: dict[str, str]
) -> tuple[int, list[int], list[int]]:
    """Open a stream at ``now`` under the schedule; return the offset frame's cursor, the
    change IDs after it, and every activity committed during the open."""
    schedule = Schedule(runtime, stream, actions)
    parser = SSEParser()
    events: list[Any] = []
    offset_seen = asyncio.Event()
    progressed = asyncio.Event()
    left = asyncio.Event()

    async def send(message: Any) -> None:
        body = message.get("body")
        if body is None:
            await schedule.at("head")
            return
        if body.startswith(b"retry:"):
            await schedule.at("retry")
        if body and not offset_seen.is_set():
            # Catch-up's writes (the first carries the retry hint too); later ones are live.
            await schedule.at("catch_up")
        events.extend(parser.feed(body))
        if any(e.event == "offset" for e in events):
            offset_seen.set()
        progressed.set()

    async def receive() -> Any:
        await left.wait()
        return {"type": "http.disconnect"}

    await schedule.at("before_route")
    response = await open_now(runtime, stream, schedule)
    await schedule.at("before_registration")
    task = asyncio.create_task(response.run(send, receive))
    async with asyncio.timeout(10):
        await offset_seen.wait()
    await schedule.at("after_offset")
    # The stream ended only by the test; the subscriber is gone once it does.
    # Whatever is still in the log is routed, and one last activity marks the end.
    last = await edit(runtime, stream)
    schedule.committed.append(last)
    await runtime.tailer._drain()
    async with asyncio.timeout(10):
        while not any(e.event == "change" and int(e.id) == last for e in events):
            progressed.clear()
            await progressed.wait()
    left.set()
    async with asyncio.timeout(10):
        await task
    [offset] = [orjson.loads(e.data)["cursor"] for e in events if e.event == "offset"]
    cursor = 0 if offset is None else int(offset)  # null: an empty log
    after = [int(e.id) for e in events[[e.event for e in events].index("offset") :] if e.event == "change"]
    return cursor, after, schedule.committed


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    stream=st.sampled_from(STREAMS),
    schedule=st.fixed_dictionaries(dict.fromkeys(POINTS, ACTIONS)),
)
async def test_now_and_live_delivery_agree_in_every_interleaving(
    runtime: Runtime, stream: str, schedule: dict[str, str]
) -> None:
    cursor, after_offset, committed = await run_schedule(runtime, stream, schedule)
    assert after_offset == sorted(set(after_offset)), "duplicated or out of order"
    assert all(i > cursor for i in after_offset), f"{after_offset} after the cursor {cursor}"
    # Everything committed above the cursor arrives, once (the log has no other writers).
    assert after_offset == [i for i in committed if i > cursor]


@pytest.mark.parametrize("stream", STREAMS)
async def test_overtaken_at_every_step_at_once(runtime: Runtime, stream: str) -> None:
    """Activities commit and the tailer routes them between
    the position read and registration, around the memberships read, and during catch-up."""
    schedule = {
        "before_route": "w",
        "before_registration": "wd",
        "head": "w",
        "prepare": "wd",
        "catch_up": "dw",
    }
    cursor, after_offset, committed = await run_schedule(runtime, stream, schedule)
    assert after_offset == [i for i in committed if i > cursor]
