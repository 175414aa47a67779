"""Checks ``syncstream serve`` makes before starting the server, so that a bad database or bus URL, or
an unreachable database, is one clear line and a non-zero exit rather than a long traceback from inside
the server's start-up."""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Final

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError

from syncstream.activities.transports import doorbell_from_url
from syncstream.commands import CommandError
from syncstream.db.engine import Database, async_url

__all__ = ["check_serve", "describe_database", "reason"]

#: How long to try reaching the database before saying it is unreachable.
CONNECT_SECONDS: Final = 10.0


def describe_database(url: str) -> str:
    """The URL for a message: the password hidden."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url.split("@")[-1] if "@" in url else url


def reason(exc: BaseException) -> str:
    """The driver's own words, on one line, without SQLAlchemy's wrapping and background links."""
    cause: BaseException = exc
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        # asyncpg's own exception (InvalidCatalogNameError, …) sits under SQLAlchemy's adapter.
        cause = exc.orig.__cause__ or exc.orig
    words = str(cause).strip().splitlines()
    first = words[0] if words else ""
    return f"{type(cause).__name__}: {first}" if first else type(cause).__name__


def check_urls(database_url: str, bus_url: str) -> None:
    """Refuse a database or bus URL that names nothing this server supports."""
    try:
        async_url(database_url)
    except (ArgumentError, ValueError) as exc:
        raise CommandError(f"bad --database-url {describe_database(database_url)!r}: {exc}") from None
    try:
        doorbell_from_url(bus_url)
    except ValueError as exc:
        raise CommandError(f"bad --bus-url: {exc}") from None


def check_sqlite(database_url: str) -> None:
    """Open a SQLite file with the standard library's driver (the one aiosqlite runs).

    Through aiosqlite, a file that cannot be opened leaves its worker thread reporting a
    future whose event loop has closed, a traceback racing the refusal's one line."""
    path = make_url(database_url).database or ":memory:"
    try:
        connection = sqlite3.connect(path)
        try:
            connection.execute("SELECT 1")
        finally:
            connection.close()
    except sqlite3.Error as exc:
        raise CommandError(
            f"cannot reach the database {describe_database(database_url)}: {reason(exc)}", code=1
        ) from None


async def check_database(database_url: str) -> None:
    """Connect once; a database that cannot be reached (or opened) is refused with the driver's reason."""
    database = Database.connect(database_url, pool_size=1)
    try:
        async with asyncio.timeout(CONNECT_SECONDS), database.reader.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except TimeoutError:
        where = describe_database(database_url)
        raise CommandError(
            f"cannot reach the database {where}: no answer in {CONNECT_SECONDS:g} s", code=1
        ) from None
    except (DBAPIError, OSError) as exc:
        raise CommandError(
            f"cannot reach the database {describe_database(database_url)}: {reason(exc)}", code=1
        ) from None
    finally:
        await database.dispose()


def check_serve(database_url: str, bus_url: str) -> None:
    """Everything ``serve`` checks before starting; raises :class:`CommandError`. An unreachable bus is
    not refused: the server starts, reports the bus in ``/health`` and reconnects by itself (a bus may
    come up after the server)."""
    check_urls(database_url, bus_url)
    if make_url(database_url).get_backend_name() == "sqlite":
        check_sqlite(database_url)
    else:
        asyncio.run(check_database(database_url))
