"""SQLite's writer thread: one transaction per queued batch, each write in a savepoint.

The batches are made deterministic by a first write that holds the thread until the
others are queued: they then run together in the next batch.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Column, ForeignKey, Integer, MetaData, String, Table, insert, select, text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, registry

from syncstream.db.engine import Database
from syncstream.db.serial_writer import SerialWriter

metadata = MetaData()
parents = Table("parents", metadata, Column("id", Integer, primary_key=True))
children = Table(
    "children",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("parent_id", ForeignKey("parents.id"), nullable=False),
    Column("name", String, nullable=False),
)


class Parent:
    id: int


registry().map_imperatively(Parent, parents)


class Refused(Exception):
    pass


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    db = Database.connect(f"sqlite:///{tmp_path / 'serial.db'}", serial=True)
    assert db.serial is not None
    await db.serial.run(lambda s: metadata.create_all(s.connection()))
    await db.serial.run(lambda s: s.execute(insert(parents), [{"id": 1}]))
    yield db
    await db.dispose()


def serial_of(database: Database) -> SerialWriter:
    assert database.serial is not None
    return database.serial


async def names(database: Database) -> list[str]:
    async with database.reader.connect() as conn:
        return list((await conn.execute(select(children.c.name).order_by(children.c.id))).scalars())


def add_child(name: str, seen: list[int] | None = None) -> Callable[[Session], str]:
    def work(session: Session) -> str:
        if seen is not None:
            seen.append(id(session.connection().get_transaction()))
        session.execute(insert(children).values(parent_id=1, name=name))
        return name

    return work


class Gate:
    """A first write that holds the writer thread until the test has queued the others."""

    def __init__(self) -> None:
        self.running = threading.Event()
        self.open = threading.Event()

    def work(self, session: Session) -> str:
        self.running.set()
        assert self.open.wait(30), "the test never opened the gate"
        return add_child("first")(session)

    async def hold(self, serial: SerialWriter) -> asyncio.Future[str]:
        """Submit the first write and return once the thread is inside it (so what is
        submitted next forms the following batch)."""
        first = serial.submit(self.work)
        assert await asyncio.to_thread(self.running.wait, 30)
        return first


async def test_a_write_commits_and_returns_its_result(database: Database) -> None:
    assert await serial_of(database).run(add_child("a")) == "a"
    assert await names(database) == ["a"]


async def test_a_failing_lone_write_leaves_nothing(database: Database) -> None:
    def fail(session: Session) -> None:
        add_child("doomed")(session)
        raise Refused

    with pytest.raises(Refused):
        await serial_of(database).run(fail)
    assert await names(database) == []


async def test_queued_writes_commit_together_and_one_failure_stays_its_own(database: Database) -> None:
    serial = serial_of(database)
    gate = Gate()
    sessions: list[int] = []

    def fail(session: Session) -> None:
        add_child("doomed", sessions)(session)
        raise Refused

    first = await gate.hold(serial)
    batch = [
        serial.submit(add_child("b", sessions)),
        serial.submit(fail),
        serial.submit(add_child("c", sessions)),
    ]
    gate.open.set()
    results = await asyncio.gather(first, *batch, return_exceptions=True)
    assert results[:2] == ["first", "b"]
    assert results[3] == "c"
    assert isinstance(results[2], Refused)
    assert len(set(sessions)) == 1, "the three queued writes ran in one database transaction"
    assert await names(database) == ["first", "b", "c"]


async def test_a_failed_commit_fails_every_write_of_its_batch(database: Database) -> None:
    serial = serial_of(database)
    gate = Gate()

    def orphan(session: Session) -> None:
        # Checked at COMMIT, so the savepoint succeeds and the batch's commit fails.
        session.execute(text("PRAGMA defer_foreign_keys = ON"))
        session.execute(insert(children).values(parent_id=999, name="orphan"))

    first = await gate.hold(serial)
    batch = [serial.submit(add_child("b")), serial.submit(orphan)]
    gate.open.set()
    results: list[Any] = await asyncio.gather(first, *batch, return_exceptions=True)
    assert results[0] == "first"
    assert all(isinstance(r, IntegrityError) for r in results[1:])
    assert await names(database) == ["first"]


async def test_writes_of_one_batch_do_not_share_orm_state(database: Database) -> None:
    serial = serial_of(database)
    gate = Gate()

    def identity_map(session: Session) -> int:
        return len(session.identity_map)

    kept: list[Parent | None] = []

    def load_parent(session: Session) -> int:
        kept.append(session.get(Parent, 1))  # held, so the identity map keeps it too
        return len(session.identity_map)

    first = await gate.hold(serial)
    loaded, after = serial.submit(load_parent), serial.submit(identity_map)
    gate.open.set()
    await first
    assert await loaded == 1
    assert await after == 0


async def test_close_finishes_what_is_queued(tmp_path: Path) -> None:
    database = Database.connect(f"sqlite:///{tmp_path / 'close.db'}", serial=True)
    serial = serial_of(database)
    await serial.run(lambda s: metadata.create_all(s.connection()))
    await serial.run(lambda s: s.execute(insert(parents), [{"id": 1}]))
    pending = [serial.submit(add_child(str(n))) for n in range(20)]
    await database.dispose()
    assert [await p for p in pending] == [str(n) for n in range(20)]


async def test_a_database_that_cannot_be_opened_fails_each_write_instead_of_hanging(tmp_path: Path) -> None:
    database = Database.connect(f"sqlite:///{tmp_path / 'no such folder' / 'x.db'}", serial=True)
    serial = serial_of(database)
    try:
        async with asyncio.timeout(60):  # a guard against a hang, not a measurement
            for _ in range(2):  # and the thread is still there for the next one
                with pytest.raises(OperationalError):
                    await serial.run(add_child("never"))
    finally:
        await database.dispose()
