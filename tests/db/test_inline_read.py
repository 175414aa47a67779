"""SQLite point reads on the event loop's thread (``db/inline_read.py``): only for a SQLite
file, the same rows as the pool's path, and None (take the pool) on any failure, never
creating a database file where there is none."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, select

from harness import unique
from syncstream.activities import log
from syncstream.activities.model import NewActivity
from syncstream.activities.transports import doorbell_from_url
from syncstream.activities.writer import ActivityWriter, WriteTransaction
from syncstream.db.engine import Database
from syncstream.db.inline_read import InlineReader
from syncstream.db.migrate import upgrade
from syncstream.db.schema import LogState


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:///:memory:",
        "sqlite://",
        "sqlite+aiosqlite:///:memory:",
        "postgresql://postgres@127.0.0.1:5432/test",
        "postgresql+asyncpg://postgres@127.0.0.1:5432/test",
    ],
)
def test_no_reader_for_another_database_or_memory(url: str) -> None:
    assert InlineReader.for_url(url) is None


@pytest.mark.parametrize("scheme", ["sqlite", "sqlite+aiosqlite"])
def test_a_reader_for_a_sqlite_file_does_not_open_it_yet(scheme: str, tmp_path: Path) -> None:
    path = tmp_path / "absent.db"
    reader = InlineReader.for_url(f"{scheme}:///{path}")
    assert reader is not None
    assert not path.exists()  # opened at its first use, not when made


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    db = Database.connect(f"sqlite:///{tmp_path / 'inline read.db'}")  # a space: quoted in the URI
    await upgrade(db)
    yield db
    await db.dispose()


async def write(db: Database, count: int) -> list[int]:
    writer = ActivityWriter(db, doorbell_from_url("memory://", channel=unique("inline-")))

    def record(tx: WriteTransaction) -> list[int]:
        return [
            tx.record(NewActivity("create", "attachment", f"at_{n}", "org_1", None, None, {"n": n}))
            for n in range(count)
        ]

    return await writer.run(record)


async def test_the_database_has_its_own_inline_reader(database: Database) -> None:
    assert database.inline is not None


async def test_fetch_reads_what_the_pool_reads(database: Database) -> None:
    inline = database.inline
    assert inline is not None
    query = select(LogState.key, LogState.value).order_by(LogState.key)
    assert log.newest_and_pruned_inline(inline) == (0, 0)
    async with database.writer.begin() as conn:
        await conn.execute(LogState.__table__.insert(), [{"key": log.PRUNED_THROUGH, "value": 41}])
    # Each read sees the latest commit (no transaction is held between reads).
    assert log.newest_and_pruned_inline(inline) == (0, 41)
    ids = await write(database, 2)
    assert log.newest_and_pruned_inline(inline) == (ids[-1], 41)
    async with database.reader.connect() as conn:
        assert await log.pruned_through(conn) == 41
        expected = [tuple(r) for r in (await conn.execute(query)).all()]
    got = inline.fetch(query)
    assert got is not None
    assert [tuple(r) for r in got] == expected
    assert (log.PRUNED_THROUGH, 41) in expected


async def test_the_inline_log_read_is_the_pools(database: Database) -> None:
    ids = await write(database, 5)
    inline = database.inline
    assert inline is not None
    page = log.read_after_inline(inline, ids[1], limit=2, max_bytes=1 << 20)
    async with database.reader.connect() as conn:
        expected = await log.read_after(conn, ids[1], limit=2, max_bytes=1 << 20)
    assert page is not None
    assert [a.id for a in page] == ids[2:4]
    assert page == expected
    assert not page.cut
    # The byte bound cuts as the pool's read does (but one activity is always read).
    small = log.read_after_inline(inline, 0, limit=10, max_bytes=1)
    assert small is not None
    assert [a.id for a in small] == ids[:1]
    assert small.cut


async def test_a_failed_read_is_none(database: Database) -> None:
    inline = database.inline
    assert inline is not None
    missing = Table("missing", MetaData(), Column("id", Integer))
    assert inline.fetch(select(missing.c.id)) is None
    assert inline.fetch_within(select(missing.c.id), {}, sized=(), overhead=0, max_bytes=10) is None
    # ... and the connection is still good for the next read.
    assert log.newest_and_pruned_inline(inline) == (0, 0)


def test_a_missing_file_is_none_and_not_created(tmp_path: Path) -> None:
    path = tmp_path / "never.db"
    reader = InlineReader.for_url(f"sqlite:///{path}")
    assert reader is not None
    assert log.newest_and_pruned_inline(reader) is None
    assert log.read_after_inline(reader, 0, limit=10, max_bytes=1000) is None
    assert not path.exists()
    assert list(tmp_path.iterdir()) == []
    reader.close()


async def test_a_database_without_the_schema_is_none(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    sqlite3.connect(path).close()  # a file, but no tables
    reader = InlineReader.for_url(f"sqlite:///{path}")
    assert reader is not None
    assert log.newest_and_pruned_inline(reader) is None
    reader.close()


async def test_close_then_read_opens_again(database: Database) -> None:
    inline = database.inline
    assert inline is not None
    assert log.newest_and_pruned_inline(inline) == (0, 0)
    inline.close()
    inline.close()  # twice is harmless
    assert log.newest_and_pruned_inline(inline) == (0, 0)
