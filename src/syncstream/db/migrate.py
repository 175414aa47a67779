"""Create or upgrade the schema with Alembic, from inside the application.

The server and the CLI call :func:`upgrade` at start, so a new release migrates an old
database by itself. On PostgreSQL an advisory lock makes several processes starting at
once take turns; on SQLite the writer's ``BEGIN IMMEDIATE`` does the same.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

from syncstream.db.engine import Database

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"
MIGRATION_LOCK = 0x5359_4E43  # "SYNC"
#: The newest migration (``migrations/versions``; a test checks it is Alembic's head). A
#: database already there starts without loading Alembic at all: a tenth of a second of
#: every start, which a restart's reconnecting clients wait for.
HEAD = "0004"


def _config(connection: Connection | None = None) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def _upgrade(connection: Connection) -> None:
    from alembic import command

    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
    command.upgrade(_config(connection), "head")


async def _at_head(database: Database) -> bool:
    try:
        async with database.reader.connect() as conn:
            found = await conn.scalar(text("SELECT version_num FROM alembic_version"))
    except DBAPIError:  # no version table yet: a new database
        return False
    return bool(found == HEAD)


async def upgrade(database: Database) -> None:
    if await _at_head(database):
        return
    async with database.writer.begin() as conn:
        await conn.run_sync(_upgrade)
