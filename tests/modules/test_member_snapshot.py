"""An org stream starts from the caller's membership snapshot only while it is whole.

The caller cache keeps each caller with its memberships and the log position they were
read at (``auth.sessions.Memberships``). A live org stream opened with such a caller reads
nothing once registered, as long as the caller cache is still in the generation the
snapshot was read in; once a membership event has been routed (or committed) in this
process since, it reads the memberships again, so a removal between authentication and
registration still ends the stream. Real SQLite log, real writer, real tailer (driven by
hand), the real route's open path.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request

from syncstream import StreamSlice, Syncstream, _streams, open_slice
from syncstream.activities import log
from syncstream.activities.model import NewActivity
from syncstream.activities.writer import WriteTransaction
from syncstream.auth.sessions import Caller, Memberships, authenticate
from syncstream.auth.tokens import new_token
from syncstream.config import Settings
from syncstream.db.migrate import upgrade
from syncstream.db.schema import Membership, Organization, Session, User
from syncstream.db.types import utcnow
from syncstream.modules.attachments.entity import ATTACHMENT
from syncstream.runtime import Runtime
from syncstream.stream.response import SSEResponse
from syncstream.stream.sse import SSEParser

ORG = "org_snap"
USER = "u_snap"
MEMBERSHIP = "m_snap"


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[Runtime]:
    sync = Syncstream(Settings(database_url=f"sqlite:///{tmp_path / 'snap.db'}"))
    sync.add(ATTACHMENT, auto=False)
    runtime = sync.runtime
    await upgrade(runtime.database)
    yield runtime
    await runtime.database.dispose()


async def signed_in(runtime: Runtime) -> Caller:
    """A member (org admin) and the caller behind its token, as ``current_caller`` loads it."""
    _token, token_hash = new_token()
    async with AsyncSession(runtime.database.writer) as session, session.begin():
        now = utcnow()
        session.add(User(id=USER, email="snap@example.test", name="Snap", password_hash="-", created_at=now))
        session.add(Organization(id=ORG, name="Snap", slug="snap", created_at=now))
        await session.flush()
        session.add(
            Membership(id=MEMBERSHIP, user_id=USER, organization_id=ORG, role="admin", created_at=now)
        )
        session.add(
            Session(id="s_snap", user_id=USER, token_hash=token_hash, created_at=now, last_used_at=now)
        )
    generation = runtime.callers.generation
    async with runtime.database.reader.connect() as conn:
        caller = await authenticate(conn, token_hash, generation)
        runtime.tailer.position = await log.newest_id(conn)
    assert caller is not None
    assert caller.memberships is not None
    assert caller.memberships.in_organization(ORG) == {MEMBERSHIP: caller.access.grants[0]}
    return caller


async def edit(runtime: Runtime) -> int:
    def record(tx: WriteTransaction) -> int:
        data = {"id": "at_snap", "name": "n"}
        return tx.record(NewActivity("update", "attachment", "at_snap", ORG, None, USER, data, ["name"]))

    return await runtime.writer.run(record)


async def remove_membership(runtime: Runtime) -> None:
    def write(tx: WriteTransaction) -> None:
        membership = tx.session.get(Membership, MEMBERSHIP)
        tx.session.delete(membership)
        tx.session.flush()
        data = {"id": MEMBERSHIP, "userId": USER, "organizationId": ORG, "projectId": None, "role": "admin"}
        tx.record(NewActivity("delete", "membership", MEMBERSHIP, ORG, None, USER, data))

    await runtime.writer.run(write)


class Reads:
    """Counts the memberships reads of the open path."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        read = _streams.load_memberships

        async def counted(*args: Any) -> Any:
            self.count += 1
            return await read(*args)

        monkeypatch.setattr(_streams, "load_memberships", counted)


async def open_now(runtime: Runtime, caller: Caller) -> list[Any]:
    """Open the org stream at ``offset=now`` and read it to its ``offset`` frame (or its end)."""
    scope = {
        "type": "http",
        "method": "GET",
        "path": f"/organizations/{ORG}/sync/stream",
        "query_string": b"offset=now&live=sse",
        "headers": [],
    }
    where = StreamSlice(ORG, None, caller)
    response = await open_slice(runtime, Request(scope), where, types={"attachment"}, stream="org")
    assert isinstance(response, SSEResponse)
    parser = SSEParser()
    events: list[Any] = []
    enough = asyncio.Event()
    left = asyncio.Event()

    async def send(message: Any) -> None:
        events.extend(parser.feed(message.get("body", b"")))
        if any(e.event in ("offset", "error") for e in events):
            enough.set()

    async def receive() -> Any:
        await left.wait()
        return {"type": "http.disconnect"}

    task = asyncio.create_task(response.run(send, receive))
    async with asyncio.timeout(10):
        await enough.wait()
    left.set()
    async with asyncio.timeout(10):
        await task
    return events


def offset_of(events: list[Any]) -> int | None:
    [cursor] = [orjson.loads(e.data)["cursor"] for e in events if e.event == "offset"]
    return None if cursor is None else int(cursor)


async def test_a_whole_snapshot_opens_without_a_read_from_the_tailers_position(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    caller = await signed_in(runtime)
    reads = Reads(monkeypatch)
    # Activities the tailer routed after the caller was read (none of them a membership's):
    # "now" is past them.
    await edit(runtime)
    newest = await edit(runtime)
    await runtime.tailer._drain()
    assert caller.memberships is not None
    assert caller.memberships.as_of < newest
    events = await open_now(runtime, caller)
    assert reads.count == 0
    assert offset_of(events) == newest


async def test_a_membership_event_since_the_snapshot_makes_the_open_read_again(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Removed after the caller was authenticated, routed before the stream registered:
    the snapshot still shows the membership, the read does not, and the stream ends."""
    caller = await signed_in(runtime)
    reads = Reads(monkeypatch)
    await remove_membership(runtime)
    await runtime.tailer._drain()  # clears the caller cache: a new generation
    assert caller.memberships is not None
    assert caller.memberships.generation != runtime.callers.generation
    events = await open_now(runtime, caller)
    assert reads.count == 1
    [error] = [e for e in events if e.event == "error"]
    assert orjson.loads(error.data)["type"] == "forbidden"


async def test_a_caller_made_elsewhere_reads_its_memberships(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A host application's own caller dependency builds callers without a snapshot."""
    caller = replace(await signed_in(runtime), memberships=None)
    reads = Reads(monkeypatch)
    events = await open_now(runtime, caller)
    assert reads.count == 1
    assert offset_of(events) == (runtime.tailer.position or None)


def test_a_snapshot_narrows_to_one_organization() -> None:
    from syncstream.permissions import Grant

    snapshot = Memberships(
        (("m1", Grant("o1", None, "admin")), ("m2", Grant("o2", "p1", "member"))), as_of=7, generation=0
    )
    assert snapshot.in_organization("o2") == {"m2": Grant("o2", "p1", "member")}
    assert snapshot.in_organization("o3") == {}
