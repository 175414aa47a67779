"""SELECTs on SQLite's driver connection: the same rows as SQLAlchemy's path, raw values,
and driver errors wrapped as SQLAlchemy wraps them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, bindparam, select
from sqlalchemy.exc import OperationalError

from syncstream.db.driver_read import fetch_all
from syncstream.db.engine import Database

metadata = MetaData()
things = Table("things", metadata, Column("id", Integer, primary_key=True), Column("kind", String))


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    db = Database.connect(f"sqlite:///{tmp_path / 'read.db'}")
    async with db.writer.begin() as conn:
        await conn.run_sync(metadata.create_all)
        await conn.execute(things.insert(), [{"id": i, "kind": "ab"[i % 2]} for i in range(1, 8)])
    yield db
    await db.dispose()


async def test_rows_match_sqlalchemys_with_in_lists_expanded(database: Database) -> None:
    query = select(things.c.id, things.c.kind).where(things.c.id > 2, things.c.kind.in_(["a", "c"]))
    query = query.order_by(things.c.id).limit(2)
    async with database.reader.connect() as conn:
        raw = await fetch_all(conn, query)
        expected = (await conn.execute(query)).all()
    assert [tuple(row) for row in raw] == [tuple(row) for row in expected] == [(4, "a"), (6, "a")]


async def test_driver_errors_are_sqlalchemys(database: Database) -> None:
    missing = Table("missing", MetaData(), Column("id", Integer))
    async with database.reader.connect() as conn:
        with pytest.raises(OperationalError, match="no such table"):
            await fetch_all(conn, select(missing.c.id))


async def test_values_that_would_need_bind_processing_are_refused(database: Database) -> None:
    async with database.reader.connect() as conn:
        with pytest.raises(TypeError, match="only integers and strings"):
            await fetch_all(conn, select(things.c.id).where(things.c.kind == datetime(2026, 1, 1)))


async def test_bind_parameters_take_the_values_given_on_each_run(database: Database) -> None:
    query = select(things.c.id).where(things.c.id > bindparam("after", 0)).order_by(things.c.id)
    async with database.reader.connect() as conn:
        assert [tuple(r) for r in await fetch_all(conn, query, {"after": 5})] == [(6,), (7,)]
        assert [tuple(r) for r in await fetch_all(conn, query, {"after": 6})] == [(7,)]  # same statement
        assert await fetch_all(conn, query.where(things.c.kind.in_([])), {"after": 0}) == []  # empty IN
