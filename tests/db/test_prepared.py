"""Prepared INSERTs write exactly what SQLAlchemy's own INSERT writes, and fail the same way."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import pytest
from sqlalchemy import Table, insert, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from syncstream.db.engine import Database
from syncstream.db.migrate import upgrade
from syncstream.db.prepared import PreparedInsert
from syncstream.db.schema import Activity
from syncstream.db.types import utcnow

activities = cast(Table, Activity.__table__)


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    db = Database.connect(f"sqlite:///{tmp_path / 'prepared.db'}", serial=True)
    await upgrade(db)
    yield db
    await db.dispose()


def row(entity_id: str, key: str | None = None) -> dict[str, Any]:
    return {
        "type": "attachment.created",
        "action": "create",
        "entity_type": "attachment",
        "entity_id": entity_id,
        "organization_id": "org_1",
        "project_id": None,
        "user_id": "usr_1",
        "changed_keys": '["name"]',
        "tx": None,
        "data": '{"id": "x"}',
        "idempotency_key": key,
        "created_at": utcnow(),
    }


async def test_the_same_row_as_sqlalchemys_insert(database: Database) -> None:
    assert database.serial is not None
    prepared = PreparedInsert(activities, returning_id=True)

    def write(session: Session) -> tuple[int | None, int]:
        conn = session.connection()
        conn.execute(text("PRAGMA defer_foreign_keys = ON"))
        mine = prepared.execute(conn, row("a"))
        theirs = conn.execute(insert(activities).returning(activities.c.id), row("b")).scalar_one()
        return mine, theirs

    mine, theirs = await database.serial.run(write)
    assert mine is not None
    assert theirs == mine + 1
    async with database.reader.connect() as conn:
        rows = {r.entity_id: r._asdict() for r in await conn.execute(select(activities))}
    a, b = rows["a"], rows["b"]
    assert a.pop("id") == mine
    assert b.pop("id") == theirs
    a.pop("entity_id"), b.pop("entity_id")
    assert abs((a.pop("created_at") - b.pop("created_at")).total_seconds()) < 60
    assert a == b


async def test_a_constraint_violation_is_sqlalchemys_integrity_error(database: Database) -> None:
    assert database.serial is not None
    prepared = PreparedInsert(activities, returning_id=True)
    await database.serial.run(lambda s: prepared.execute(s.connection(), row("a", key="k1")))
    with pytest.raises(IntegrityError):
        await database.serial.run(lambda s: prepared.execute(s.connection(), row("b", key="k1")))
