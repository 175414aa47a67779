"""Create or upgrade the schema with Alembic, from inside the application.

The server and the CLI call :func:`upgrade` at start, so a new release migrates an old
database by itself. On PostgreSQL an advisory lock makes several processes starting at
once take turns; on SQLite the writer's ``BEGIN IMMEDIATE`` does the same.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, text

from syncstream.db.engine import Database

MIGRATIONS = Path(__file__).parent / "migrations"
MIGRATION_LOCK = 0x5359_4E43  # "SYNC"


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def _upgrade(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
    command.upgrade(_config(connection), "head")


async def upgrade(database: Database) -> None:
    async with database.writer.begin() as conn:
        await conn.run_sync(_upgrade)
