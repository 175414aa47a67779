"""Catch-up reads ``created_at`` as text and renders it without a datetime: the bytes
must be exactly those of the datetime path it replaced, on both backends.

``old_render`` is the serialisation as it was (a datetime from ``UTCDateTime``, then
``iso_ms``); the new one reads the stored value with ``IsoMsText``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import orjson
import pytest
from sqlalchemy import insert, select

from databases import create_postgres_database, drop_postgres_database
from syncstream.activities import log
from syncstream.activities.model import render_message
from syncstream.db.engine import Database
from syncstream.db.migrate import upgrade
from syncstream.db.schema import Activity as ActivityRow
from syncstream.db.types import iso_ms

TIMES = [
    datetime(2026, 1, 2, 3, 4, 5, 678901),  # naive: UTC; sub-millisecond digits truncated
    datetime(2026, 1, 2, 3, 4, 5, 999999, tzinfo=UTC),  # truncated, never rounded up
    datetime(2026, 1, 2, 3, 4, 5),  # whole second: ".000"
    datetime(2026, 1, 2, 1, 4, 5, 120000, tzinfo=timezone(timedelta(hours=-3))),  # converted to UTC
    datetime(2026, 12, 31, 23, 59, 59, 999000, tzinfo=timezone(timedelta(hours=5, minutes=30))),
]


def old_render(row: dict[str, object], created_at: datetime) -> bytes:
    def fragment(text: object) -> orjson.Fragment | None:
        return None if text is None else orjson.Fragment(str(text))

    return orjson.dumps(
        {
            "activityId": str(row["id"]),
            "action": row["action"],
            "entityType": row["entity_type"],
            "entityId": row["entity_id"],
            "organizationId": row["organization_id"],
            "projectId": row["project_id"],
            "changedKeys": fragment(row["changed_keys"]),
            "createdAt": iso_ms(created_at),
            "tx": fragment(row["tx"]),
            "data": fragment(row["data"]),
        }
    )


@pytest.fixture(params=["sqlite", "postgresql"])
async def database(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Database]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'render.db'}"
    else:
        url = await create_postgres_database()
    db = Database.connect(url)
    try:
        await upgrade(db)
        yield db
    finally:
        await db.dispose()
        if request.param == "postgresql":
            await drop_postgres_database(url)


async def test_catch_up_rendering_is_byte_for_byte_the_datetime_rendering(database: Database) -> None:
    rows = [
        {
            "type": "page.created",
            "action": "create",
            "entity_type": "page",
            "entity_id": f'pag_{i}\u00e9"',  # escaping stays orjson's
            "organization_id": "org_1",
            "project_id": None if i % 2 else "prj_1",
            "user_id": "usr_1",
            "changed_keys": '["title"]' if i % 2 else None,
            "tx": '{"id":"t"}' if i % 3 == 0 else None,
            "data": '{"title":"caf\u00e9 \\u2028"}',
            "idempotency_key": None,
            "created_at": created_at,
        }
        for i, created_at in enumerate(TIMES)
    ]
    async with database.writer.begin() as conn:
        await conn.execute(insert(ActivityRow.__table__), rows)
    async with database.reader.connect() as conn:
        activities = await log.read_after(conn, 0, limit=100)
        ids = (await conn.execute(select(ActivityRow.id).order_by(ActivityRow.id))).scalars().all()
        # The old path: the column through UTCDateTime, as every other read still does.
        stored = (await conn.execute(select(ActivityRow.created_at).order_by(ActivityRow.id))).scalars().all()
    assert len(activities) == len(TIMES)
    for activity, row, activity_id, created_at in zip(activities, rows, ids, stored, strict=True):
        assert render_message(activity) == old_render({**row, "id": activity_id}, created_at)
        assert activity.created_at == created_at.replace(microsecond=created_at.microsecond // 1000 * 1000)
