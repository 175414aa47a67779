"""The capture triggers against real SQLite files and PostgreSQL databases: what a plain
database connection (no syncstream code) writes to a declared table is recorded as the API
records it, and what syncstream writes itself is recorded once."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import pytest
from sqlalchemy import Boolean, String, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from capture.plain import Plain
from databases import create_postgres_database, drop_postgres_database
from syncstream import entity_type, in_project
from syncstream._capture import CaptureError, column_shape, set_capture
from syncstream.activities import log
from syncstream.activities.transports import doorbell_from_url
from syncstream.activities.writer import ActivityWriter, WriteTransaction
from syncstream.db.engine import Database
from syncstream.db.migrate import upgrade
from syncstream.db.types import UTCDateTime, iso_ms

pytestmark = pytest.mark.asyncio


class Base(DeclarativeBase):
    pass


class Item(Base):
    __tablename__ = "capture_items"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    organization_id: Mapped[str] = mapped_column(String(32))
    project_id: Mapped[str | None] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(String(200))
    done: Mapped[bool] = mapped_column(Boolean)
    size: Mapped[int | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revision: Mapped[int] = mapped_column(default=0)


def item_json(i: Any) -> dict[str, Any]:
    return {
        "id": i.id,
        "title": i.title,
        "done": i.done,
        "size": i.size,
        "createdAt": iso_ms(i.created_at),
        "meta": {"kind": "item", "projectId": i.project_id},
    }


ITEM = entity_type("item", Item, scope=in_project(), shape=item_json, untracked=["revision"])


@dataclass
class Setup:
    database: Database
    plain: Plain

    async def activities(self, after: int = 0) -> list[Any]:
        async with self.database.reader.connect() as conn:
            return list(await log.read_after(conn, after, limit=100_000))

    async def item(self, item_id: str) -> Item | None:
        async with AsyncSession(self.database.reader) as session:
            return await session.get(Item, item_id)


@pytest.fixture(params=["sqlite", "postgresql"])
async def setup(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Setup]:
    url = (
        f"sqlite:///{tmp_path / 'capture.db'}"
        if request.param == "sqlite"
        else await create_postgres_database()
    )
    database = Database.connect(url, pool_size=4, serial=True, capture=True)
    try:
        await upgrade(database)
        async with database.writer.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        await set_capture(database, [ITEM])
        yield Setup(database, Plain(url))
    finally:
        await database.dispose()
        if request.param == "postgresql":
            await drop_postgres_database(url)


CREATED = datetime(2026, 12, 7, 10, 11, 12, 345678, tzinfo=UTC)


def _when(setup: Setup, value: datetime) -> Any:
    """A time as a plain client passes it: SQLAlchemy's stored text on SQLite."""
    return value.replace(tzinfo=None).isoformat(" ") if setup.plain.sqlite else value


INSERT = (
    "INSERT INTO capture_items (id, organization_id, project_id, title, done, size, created_at, revision) "
)


async def test_a_plain_connections_writes_are_recorded_as_the_api_renders_them(setup: Setup) -> None:
    when = _when(setup, CREATED)
    await setup.plain.run(
        (INSERT + "VALUES (?, ?, ?, ?, ?, ?, ?, 0)", ("i1", "org1", "p1", "first", False, 7, when)),
        (INSERT + "VALUES (?, ?, ?, ?, ?, ?, ?, 0)", ("i2", "org1", None, "second", True, None, when)),
    )
    await setup.plain.run(
        ("UPDATE capture_items SET title = ?, done = ? WHERE id = ?", ("renamed", True, "i1"))
    )
    before = await setup.item("i1")
    await setup.plain.run(("DELETE FROM capture_items WHERE id = ?", ("i1",)))
    found = await setup.activities()
    assert [(a.type, a.entity_id, a.organization_id, a.project_id) for a in found] == [
        ("item.created", "i1", "org1", "p1"),
        ("item.created", "i2", "org1", None),
        ("item.updated", "i1", "org1", "p1"),
        ("item.deleted", "i1", "org1", "p1"),
    ]
    assert orjson.loads(found[2].changed_keys or "") == ["title", "done"]
    assert [a.changed_keys for a in found if a.action != "update"] == [None, None, None]
    assert all(a.user_id is None and a.tx is None for a in found)
    # The data is what the declared shape renders of the row as stored.
    second = await setup.item("i2")
    assert second is not None
    assert before is not None
    assert orjson.loads(found[1].data or "") == item_json(second)
    assert orjson.loads(found[2].data or "") == item_json(before)
    assert orjson.loads(found[3].data or "") == item_json(before)
    assert (
        orjson.loads(found[3].data or "")["createdAt"] == "2026-12-07T10:11:12.345Z"
    )  # truncated, not rounded


async def test_no_change_untracked_change_and_rollback_record_nothing(setup: Setup) -> None:
    when = _when(setup, CREATED)
    await setup.plain.run(
        (INSERT + "VALUES (?, ?, ?, ?, ?, ?, ?, 0)", ("i1", "org1", "p1", "t", False, 1, when))
    )
    start = (await setup.activities())[-1].id
    await setup.plain.run(("UPDATE capture_items SET title = title, done = ?", (False,)))
    await setup.plain.run(("UPDATE capture_items SET revision = revision + 1", ()))
    await setup.plain.run(
        (INSERT + "VALUES (?, ?, ?, ?, ?, ?, ?, 0)", ("i9", "org1", "p1", "gone", False, 1, when)),
        ("UPDATE capture_items SET title = ? WHERE id = ?", ("never", "i1")),
        rollback=True,
    )
    assert await setup.activities(start) == []
    await setup.plain.run(("UPDATE capture_items SET size = NULL, revision = 5", ()))
    (update,) = await setup.activities(start)
    assert orjson.loads(update.changed_keys or "") == ["size"]


async def test_a_bulk_update_is_recorded_whole_and_in_order(setup: Setup) -> None:
    when = _when(setup, CREATED)
    rows = [
        (INSERT + "VALUES (?, ?, ?, ?, ?, ?, ?, 0)", (f"i{n:05}", "org1", "p1", "t", False, n, when))
        for n in range(2000)
    ]
    await setup.plain.run(*rows)
    start = (await setup.activities())[-1].id
    await setup.plain.run(("UPDATE capture_items SET done = ?", (True,)))
    found = await setup.activities(start)
    assert len(found) == 2000
    assert sorted(a.entity_id for a in found) == [f"i{n:05}" for n in range(2000)]
    assert [a.id for a in found] == sorted(a.id for a in found)
    assert {a.changed_keys for a in found} == {'["done"]'}


async def test_syncstreams_own_writes_are_recorded_once(setup: Setup) -> None:
    writer = ActivityWriter(setup.database, doorbell_from_url("memory://", channel="capture-test"))

    def create(tx: WriteTransaction) -> None:
        row = Item(
            id="own", organization_id="org1", project_id=None, title="t", done=False, created_at=CREATED
        )
        tx.session.add(row)
        tx.session.flush()
        tx.record(ITEM.activity("create", row, user_id="u1", tx={"transactionId": "t1", "sourceId": "s"}))

    def update(tx: WriteTransaction) -> None:
        row = tx.session.get(Item, "own")
        assert row is not None
        row.title = "changed"
        tx.session.flush()
        tx.record(ITEM.activity("update", row, user_id="u1", changed_keys=["title"]))

    await writer.run(create)
    await writer.run(update)
    found = await setup.activities()
    assert [(a.action, a.user_id) for a in found] == [("create", "u1"), ("update", "u1")]
    assert orjson.loads(found[0].tx or "") == {"transactionId": "t1", "sourceId": "s"}
    # And the marker never leaks into a commit: a plain write afterwards is captured.
    await setup.plain.run(("UPDATE capture_items SET title = ? WHERE id = ?", ("theirs", "own")))
    assert [a.user_id for a in await setup.activities(found[-1].id)] == [None]


async def test_status_and_removal_from_the_command_line(setup: Setup) -> None:
    async def cli(*args: str) -> Any:
        command = [
            sys.executable,
            "-m",
            "syncstream.cli",
            "capture",
            *args,
            "--database-url",
            setup.plain.url,
        ]
        done = await asyncio.to_thread(subprocess.run, command, capture_output=True, timeout=60, check=True)
        return orjson.loads(done.stdout)

    assert await cli("status") == {"capture": "on", "entityTypes": ["item"]}
    assert await cli("disable") == {"capture": "off", "entityTypes": []}
    row = ("x", "o", None, "t", False, 1, _when(setup, CREATED))
    await setup.plain.run((INSERT + "VALUES (?, ?, ?, ?, ?, ?, ?, 0)", row))
    assert await setup.activities() == []


async def test_a_shape_that_computes_cannot_be_captured() -> None:
    computed = entity_type("bad", Item, scope=in_project(), shape=lambda i: {"title": i.title.upper()})
    with pytest.raises(CaptureError, match="bad"):
        column_shape(computed)
    tested = entity_type("bad2", Item, scope=in_project(), shape=lambda i: {"done": bool(i.done)})
    with pytest.raises(CaptureError, match="tests a column"):
        column_shape(tested)
    formatted = entity_type(
        "bad3", Item, scope=in_project(), shape=lambda i: {"at": i.created_at.isoformat()}
    )
    with pytest.raises(CaptureError, match="date-time"):
        column_shape(formatted)
    identity = entity_type(
        "bad4",
        Item,
        scope=in_project(),
        shape=lambda i: {"sized": i.size is not None, "at": iso_ms(i.created_at)},
    )
    with pytest.raises(CaptureError, match="tests a column"):
        column_shape(identity)
    assert set(column_shape(ITEM)) == {"id", "title", "done", "size", "createdAt", "meta"}


async def test_plain_select_sees_the_row(setup: Setup) -> None:
    # Guard for the fixture: the ORM reads back what the plain client wrote.
    await setup.plain.run(
        (INSERT + "VALUES (?, ?, ?, ?, ?, ?, ?, 0)", ("r", "o", None, "t", True, 1, _when(setup, CREATED)))
    )
    async with AsyncSession(setup.database.reader) as session:
        assert (await session.scalars(select(Item.done))).all() == [True]


async def test_a_postgresql_client_may_say_who_wrote_and_which_tx_to_echo(setup: Setup) -> None:
    if setup.plain.sqlite:
        pytest.skip("SQLite has no transaction-local settings")
    tx = orjson.dumps({"transactionId": "t9", "sourceId": "cron"}).decode()
    await setup.plain.run(
        ("SELECT set_config('syncstream.user_id', ?, true)", ("usr_cron",)),
        ("SELECT set_config('syncstream.tx', ?, true)", (tx,)),
        (INSERT + "VALUES (?, ?, ?, ?, ?, ?, ?, 0)", ("w", "o", None, "t", True, 1, CREATED)),
    )
    (found,) = await setup.activities()
    assert found.user_id == "usr_cron"
    assert orjson.loads(found.tx or "") == {"transactionId": "t9", "sourceId": "cron"}


async def test_a_delete_of_every_row_records_each_and_truncate_is_refused(setup: Setup) -> None:
    rows = [
        ("a", "o", None, "t", False, 1, _when(setup, CREATED)),
        ("b", "o", None, "t", True, 2, _when(setup, CREATED)),
    ]
    await setup.plain.run(*((INSERT + "VALUES (?, ?, ?, ?, ?, ?, ?, 0)", row) for row in rows))
    start = (await setup.activities())[-1].id
    await setup.plain.run(("DELETE FROM capture_items", ()))  # SQLite: no truncate optimisation
    assert sorted((a.action, a.entity_id) for a in await setup.activities(start)) == [
        ("delete", "a"),
        ("delete", "b"),
    ]
    if not setup.plain.sqlite:
        with pytest.raises(asyncpg.RaiseError, match="TRUNCATE"):
            await setup.plain.run(("TRUNCATE capture_items", ()))


async def test_a_session_on_the_write_engine_is_recorded_once(setup: Setup) -> None:
    """``sync.session``'s engine (aiosqlite on SQLite): its transactions are marked too."""
    from syncstream._entities import record

    async with AsyncSession(setup.database.writer, expire_on_commit=False) as session:
        row = Item(id="s1", organization_id="o", project_id=None, title="t", done=False, created_at=CREATED)
        session.add(row)
        await session.flush()
        await session.run_sync(lambda s: record(s, ITEM, "create", row, hook=None, user_id="u2"))
        await session.commit()
    await setup.plain.run(("UPDATE capture_items SET done = ? WHERE id = ?", (True, "s1")))
    found = await setup.activities()
    assert [(a.action, a.user_id) for a in found] == [("create", "u2"), ("update", None)]


async def test_on_postgresql_the_trigger_rings_the_doorbell_at_commit(setup: Setup) -> None:
    if setup.plain.sqlite:
        pytest.skip("SQLite has no notifications: the tailer's poll finds external writes")
    await set_capture(setup.database, [ITEM], notify_channel="capture-bell")
    heard: asyncio.Queue[str] = asyncio.Queue()
    listener = await asyncpg.connect(setup.plain.url)
    try:
        await listener.add_listener("capture-bell", lambda *args: heard.put_nowait(args[-1]))
        row = ("n", "o", None, "t", True, 1, CREATED)
        await setup.plain.run((INSERT + "VALUES (?, ?, ?, ?, ?, ?, ?, 0)", row))
        async with asyncio.timeout(10):
            payload = await heard.get()
    finally:
        await listener.close()
    (found,) = await setup.activities()
    assert payload == str(found.id)


async def test_a_row_created_changed_and_deleted_in_one_transaction_records_each_step_in_order(
    setup: Setup,
) -> None:
    """On PostgreSQL the triggers run at the commit, on each change's own row versions."""
    row = ("x", "o", None, "first", False, 1, _when(setup, CREATED))
    await setup.plain.run(
        (INSERT + "VALUES (?, ?, ?, ?, ?, ?, ?, 0)", row),
        ("UPDATE capture_items SET title = ? WHERE id = ?", ("second", "x")),
        ("UPDATE capture_items SET title = ? WHERE id = ?", ("third", "x")),
        ("DELETE FROM capture_items WHERE id = ?", ("x",)),
    )
    found = await setup.activities()
    assert [(a.action, orjson.loads(a.data or "")["title"]) for a in found] == [
        ("create", "first"),
        ("update", "second"),
        ("update", "third"),
        ("delete", "third"),
    ]
