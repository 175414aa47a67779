"""The Alembic migrations, on SQLite and PostgreSQL: an old database upgrades in place, keeping
its rows, and the migrated schema is the one the models declare."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, text

from databases import create_postgres_database, drop_postgres_database
from syncstream.activities.transports.memory import MemoryDoorbell
from syncstream.activities.writer import ActivityWriter
from syncstream.auth.sessions import record_last_used, session_last_used
from syncstream.db.engine import Database
from syncstream.db.migrate import _config, upgrade
from syncstream.db.schema import Base

BACKENDS = ("sqlite", "postgresql")


@pytest_asyncio.fixture(params=BACKENDS)
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'migrations.db'}"
    else:
        url = await create_postgres_database()
    database = Database.connect(url, pool_size=2)
    try:
        yield database
    finally:
        await database.dispose()
        if request.param == "postgresql":
            await drop_postgres_database(url)


def _upgrade_to(connection: Connection, revision: str) -> None:
    command.upgrade(_config(connection), revision)


def _differences(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"render_as_batch": True})
    return list(compare_metadata(context, Base.metadata))


SIGNED_IN = datetime(2026, 11, 1, 12, 0, 0, 123000, tzinfo=UTC)


def naive_on_sqlite(database: Database, value: datetime) -> Any:
    return value.replace(tzinfo=None) if database.dialect == "sqlite" else value


async def test_sessions_of_an_old_database_keep_working_and_count_as_used_at_sign_in(
    database: Database,
) -> None:
    async with database.writer.begin() as conn:
        await conn.run_sync(_upgrade_to, "0001")
    stamp = naive_on_sqlite(database, SIGNED_IN)
    async with database.writer.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO users (id, email, name, password_hash, role, created_at)"
                " VALUES ('usr_1', 'a@example.test', 'A', 'x', 'user', :at)"
            ),
            {"at": stamp},
        )
        await conn.execute(
            text(
                "INSERT INTO sessions (id, user_id, token_hash, created_at)"
                " VALUES ('ses_1', 'usr_1', 'h', :at)"
            ),
            {"at": stamp},
        )
    await upgrade(database)
    async with database.reader.connect() as conn:
        row = (await conn.execute(text("SELECT id, last_used_at, user_agent, address FROM sessions"))).one()
    assert row[0] == "ses_1"
    last_used = row[1] if isinstance(row[1], datetime) else datetime.fromisoformat(row[1])
    if last_used.tzinfo is None:  # SQLite keeps naive UTC
        last_used = last_used.replace(tzinfo=UTC)
    assert last_used == SIGNED_IN
    assert (row[2], row[3]) == (None, None)


async def test_the_migrated_schema_is_what_the_models_declare(database: Database) -> None:
    await upgrade(database)
    async with database.reader.connect() as conn:
        assert await conn.run_sync(_differences) == []


async def test_last_use_is_recorded_forward_only(database: Database) -> None:
    """What SessionActivity writes: each session's ``last_used_at`` moves forward, never back."""
    await upgrade(database)
    async with database.writer.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO users (id, email, name, password_hash, role, created_at)"
                " VALUES ('usr_1', 'a@example.test', 'A', 'x', 'user', :at)"
            ),
            {"at": naive_on_sqlite(database, SIGNED_IN)},
        )
        for session_id in ("ses_1", "ses_2"):
            await conn.execute(
                text(
                    "INSERT INTO sessions (id, user_id, token_hash, created_at, last_used_at)"
                    " VALUES (:id, 'usr_1', :id, :at, :at)"
                ),
                {"id": session_id, "at": naive_on_sqlite(database, SIGNED_IN)},
            )
    start = SIGNED_IN.timestamp()

    writer = ActivityWriter(database, MemoryDoorbell())

    async def touch(used: dict[str, float]) -> None:
        await writer.run(lambda tx: record_last_used(tx.session, used))

    await touch({"ses_1": start + 100, "ses_2": start + 50})
    await touch({"ses_1": start + 10})  # older: ignored
    async with database.reader.connect() as conn:
        assert await session_last_used(conn, "ses_1") == start + 100
        assert await session_last_used(conn, "ses_2") == start + 50
        assert await session_last_used(conn, "ses_gone") is None


def test_head_is_alembics_newest_migration() -> None:
    from alembic.script import ScriptDirectory

    from syncstream.db.migrate import HEAD

    assert ScriptDirectory.from_config(_config()).get_heads() == [HEAD]


async def test_a_database_at_head_is_known_without_alembic(database: Database) -> None:
    from syncstream.db.migrate import _at_head

    assert not await _at_head(database)  # a new database: no version table yet
    await upgrade(database)
    assert await _at_head(database)
    await upgrade(database)  # at head: nothing to do, and nothing fails
    async with database.writer.begin() as conn:
        await conn.execute(text("UPDATE alembic_version SET version_num = '0003'"))
    assert not await _at_head(database)  # behind: upgrade() would run Alembic
