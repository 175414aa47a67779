"""The Alembic migrations, on SQLite and PostgreSQL: an old database upgrades in place, keeping
its rows, and the migrated schema is the one the models declare."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import pytest_asyncio
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, text

from databases import create_postgres_database, drop_postgres_database
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


async def test_sessions_of_an_old_database_keep_working_and_count_as_used_at_sign_in(
    database: Database,
) -> None:
    async with database.writer.begin() as conn:
        await conn.run_sync(_upgrade_to, "0001")
    stamp = SIGNED_IN.replace(tzinfo=None) if database.dialect == "sqlite" else SIGNED_IN
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
