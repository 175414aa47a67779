"""Declared entity types record their activities in the writing transaction, explicitly and
through SQLAlchemy's session events, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import ForeignKey, String, insert, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship

from databases import create_postgres_database, drop_postgres_database
from syncstream import (
    Activity,
    Settings,
    Syncstream,
    UnrecordedWriteError,
    in_organization,
    in_project,
    public,
)
from syncstream.db.migrate import upgrade
from syncstream.db.schema import Activity as ActivityRow

pytestmark = pytest.mark.asyncio(loop_scope="session")


class Base(DeclarativeBase):
    pass


class Note(Base):
    __tablename__ = "notes"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    organization_id: Mapped[str] = mapped_column(String(32))
    project_id: Mapped[str | None] = mapped_column(String(32))
    body_text: Mapped[str] = mapped_column(String(200))
    revision: Mapped[int] = mapped_column(default=0)


class Folder(Base):
    __tablename__ = "folders"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    organization_id: Mapped[str] = mapped_column(String(32))
    files: Mapped[list[File]] = relationship(cascade="all, delete-orphan", lazy="selectin")


class File(Base):
    __tablename__ = "files"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    organization_id: Mapped[str] = mapped_column(String(32))
    folder_id: Mapped[str] = mapped_column(ForeignKey("folders.id"))


class Notice(Base):
    __tablename__ = "notices"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    title: Mapped[str] = mapped_column(String(200))


def note_json(n: Note) -> dict[str, Any]:
    return {"id": n.id, "bodyText": n.body_text}


@pytest.fixture(params=["sqlite", "postgresql"])
async def sync(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Syncstream]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'entities.db'}"
    else:
        url = await create_postgres_database()
    # No polling to speak of: an activity reaches the bus only if its commit rang the doorbell.
    instance = Syncstream(Settings(database_url=url, poll_seconds=3600), organization_stream=None)
    instance.entity("note", Note, scope=in_project(), shape=note_json, untracked=["revision"])
    instance.entity("folder", Folder, scope=in_organization(), shape=lambda f: {"id": f.id})
    instance.entity("file", File, scope=in_organization(), shape=lambda f: {"id": f.id})
    instance.entity("notice", Notice, scope=public(), shape=lambda n: {"id": n.id, "title": n.title})
    await upgrade(instance.runtime.database)
    async with instance.engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    await instance.runtime.tailer.start()
    yield instance
    await instance.runtime.tailer.stop()
    await instance.runtime.database.dispose()
    if request.param == "postgresql":
        await drop_postgres_database(url)


async def log_rows(sync: Syncstream) -> list[Any]:
    async with sync.runtime.database.reader.connect() as conn:
        return list(await conn.execute(select(ActivityRow).order_by(ActivityRow.id)))


TX = {"transactionId": "t-1", "sourceId": "tab-1", "changedField": None}


async def test_orm_writes_record_their_activities_in_the_same_transaction(sync: Syncstream) -> None:
    async with AsyncSession(sync.engine, expire_on_commit=False) as session:
        sync.context(session, user_id="u1", tx=TX)
        note = Note(id="n1", organization_id="o1", project_id="p1", body_text="hello")
        session.add(note)
        await session.commit()
        note.revision += 1  # untracked alone: no change
        await session.commit()
        note.body_text = "hello"  # the same value: no change
        await session.commit()
        note.body_text = "bye"
        note.revision += 1
        await session.commit()
        await session.delete(note)
        await session.commit()
    rows = await log_rows(sync)
    assert [(r.type, r.changed_keys) for r in rows] == [
        ("note.created", None),
        ("note.updated", '["bodyText"]'),
        ("note.deleted", None),
    ]
    created, updated, deleted = rows
    assert (created.organization_id, created.project_id, created.user_id) == ("o1", "p1", "u1")
    assert orjson.loads(created.tx) == TX  # the context lasts until the commit: later ones carry none
    assert created.idempotency_key == "u1:o1:note:t-1"
    assert updated.tx is None
    assert orjson.loads(updated.data) == {"id": "n1", "bodyText": "bye"}
    assert orjson.loads(deleted.data) == {"id": "n1", "bodyText": "bye"}  # as it stood before


async def test_a_rolled_back_write_records_nothing_and_a_repeated_create_fails_whole(
    sync: Syncstream,
) -> None:
    async with AsyncSession(sync.engine) as session:
        session.add(Note(id="n2", organization_id="o1", project_id=None, body_text="x"))
        await session.flush()  # the activity is written with the row...
        await session.rollback()  # ...and goes with it
        sync.context(session, user_id="u1", tx=TX)
        session.add(Note(id="n3", organization_id="o1", project_id=None, body_text="x"))
        await session.commit()
        sync.context(session, user_id="u1", tx=TX)  # the same transactionId again
        session.add(Note(id="n4", organization_id="o1", project_id=None, body_text="x"))
        with pytest.raises(IntegrityError):
            await session.commit()
        await session.rollback()
        assert await session.get(Note, "n4") is None  # the row went with its activity
    assert [r.entity_id for r in await log_rows(sync)] == ["n3"]
    assert await sync.created_by("note", "u1", "o1", "t-1") == "n3"


async def test_explicit_records_for_core_writes_and_public_types_never_keep_tx(sync: Syncstream) -> None:
    row = {"id": "c1", "title": "Core"}

    def write(session: Session) -> int:
        session.execute(insert(Notice).values(row).execution_options(syncstream_recorded=True))
        return sync.record(session, "notice", "create", Notice(**row), user_id="u1", tx=TX)

    async with AsyncSession(sync.engine) as session:
        activity_id = await session.run_sync(write)
        await session.commit()
    (found,) = await log_rows(sync)
    assert (found.id, found.type, found.tx) == (activity_id, "notice.created", None)
    assert found.idempotency_key == "u1:-:notice:t-1"  # replay still happens once


async def test_the_commit_rings_the_bus_at_once(sync: Syncstream) -> None:
    seen: asyncio.Queue[Activity] = asyncio.Queue()
    sync.runtime.bus.on("note.created", seen.put_nowait)
    async with AsyncSession(sync.engine) as session:
        session.add(Note(id="n5", organization_id="o1", project_id=None, body_text="x"))
        await session.commit()
    activity = await asyncio.wait_for(seen.get(), 10)
    assert activity.entity_id == "n5"
    # On syncstream's own write path too (SQLite's writer thread): recorded and rung once.
    await sync.write(
        lambda tx: tx.session.add(Note(id="n6", organization_id="o1", project_id=None, body_text="y"))
    )
    activity = await asyncio.wait_for(seen.get(), 10)
    assert activity.entity_id == "n6"
    assert [r.entity_id for r in await log_rows(sync)] == ["n5", "n6"]


async def test_a_write_answers_once_this_process_has_routed_it(sync: Syncstream) -> None:
    """Read your writes: a stream opened once a write has answered finds it in its catch-up,
    which stops where this process's tailer is; so the write waits for the tailer."""
    for index in range(5):
        note = Note(id=f"r{index}", organization_id="o1", project_id=None, body_text="x")
        await sync.write(lambda tx, note=note: tx.session.add(note))
        assert sync.runtime.tailer.position == (await log_rows(sync))[-1].id


async def test_postgres_orders_orm_writes_by_the_advisory_lock(sync: Syncstream) -> None:
    if sync.runtime.database.dialect != "postgresql":
        pytest.skip("SQLite has one writer at a time")
    first = AsyncSession(sync.engine)
    first.add(Note(id="a", organization_id="o1", project_id=None, body_text="first"))
    await first.flush()  # holds the ordering lock until it commits

    async def second() -> None:
        async with AsyncSession(sync.engine) as session:
            session.add(Note(id="b", organization_id="o1", project_id=None, body_text="second"))
            await session.commit()

    waiting = asyncio.create_task(second())
    async with asyncio.timeout(30):
        while True:  # until the second write waits on the lock (an observable state, not a sleep)
            async with sync.runtime.database.reader.connect() as conn:
                query = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                if await conn.scalar(text(query)):
                    break
            await asyncio.sleep(0.01)
    assert not waiting.done()
    await first.commit()
    await first.close()
    await asyncio.wait_for(waiting, 30)
    assert [r.entity_id for r in await log_rows(sync)] == ["a", "b"]


async def test_an_orm_bulk_statement_on_a_declared_model_is_refused_unless_recorded(sync: Syncstream) -> None:
    async with AsyncSession(sync.engine) as session:
        session.add(Note(id="n7", organization_id="o1", project_id=None, body_text="x"))
        await session.commit()
        with pytest.raises(UnrecordedWriteError, match="without their activities"):
            await session.execute(update(Note).values(body_text="everyone"))
        await session.rollback()

        def recorded(s: Session) -> None:
            s.execute(
                update(Note)
                .where(Note.id == "n7")
                .values(body_text="y")
                .execution_options(syncstream_recorded=True)
            )
            sync.record(s, "note", "update", s.get(Note, "n7"), changed_keys=["bodyText"])

        await session.run_sync(recorded)
        await session.commit()
    assert [r.type for r in await log_rows(sync)] == ["note.created", "note.updated"]


async def test_cascaded_and_orphaned_deletes_record_their_activities(sync: Syncstream) -> None:
    async with AsyncSession(sync.engine, expire_on_commit=False) as session:
        folder = Folder(id="d1", organization_id="o1")
        folder.files = [File(id=f"f{i}", organization_id="o1") for i in range(3)]
        session.add(folder)
        await session.commit()
        folder.files.remove(folder.files[0])  # delete-orphan: decided by the flush itself
        await session.commit()
        await session.delete(folder)  # cascades to the two files left
        await session.commit()
    recorded = [(r.type, r.entity_id) for r in await log_rows(sync)]
    assert recorded[:4] == [
        ("folder.created", "d1"),
        ("file.created", "f0"),
        ("file.created", "f1"),
        ("file.created", "f2"),
    ]
    assert recorded[4] == ("file.deleted", "f0")
    assert sorted(recorded[5:]) == [("file.deleted", "f1"), ("file.deleted", "f2"), ("folder.deleted", "d1")]
