"""Engines for the two supported databases, with the settings each needs to be correct.

SQLite gets two engines on one file: readers run in WAL mode beside the writer, and the
writer is a single connection whose transactions start with ``BEGIN IMMEDIATE``. One
writer connection turns SQLite's busy-wait (which sleeps and retries) into a fair asyncio
queue, and ``IMMEDIATE`` takes the write lock up front so that a transaction that read
first can never fail to upgrade to a writer.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

from syncstream.db.inline_read import InlineReader
from syncstream.db.serial_writer import SerialWriter


def async_url(url: str) -> str:
    """Map the URLs users write (``sqlite:///x.db``, ``postgresql://…``) to async drivers."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return parsed.set(drivername="sqlite+aiosqlite").render_as_string(hide_password=False)
    if backend in ("postgresql", "postgres"):
        return parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)
    raise ValueError(f"unsupported database URL {parsed.drivername!r}: use sqlite:///… or postgresql://…")


def _sqlite_engine(url: str, *, immediate: bool, pool_size: int, capture: bool = False) -> AsyncEngine:
    # No rollback when a connection goes back to the pool: the driver is in autocommit
    # (see _on_connect), so only a transaction begun through SQLAlchemy can be open, and
    # SQLAlchemy rolls that back itself as the connection closes. The pool's own rollback
    # came on top of every read made straight on the driver (db/driver_read.py): one more
    # hop to the driver's thread per read, a fifth of a resuming stream's open.
    engine = create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=0,
        pool_timeout=30,
        pool_reset_on_return=None,
        connect_args={"timeout": 30},
    )
    _configure_sqlite(engine.sync_engine, immediate=immediate, capture=capture)
    return engine


def _serial_writer(url: str, *, capture: bool) -> SerialWriter:
    # The plain sqlite3 driver: this connection lives on the writer's own thread.
    sync_url = make_url(url).set(drivername="sqlite+pysqlite")
    engine = create_engine(sync_url, pool_size=1, max_overflow=0, connect_args={"timeout": 30})
    _configure_sqlite(engine, immediate=True, capture=capture)
    return SerialWriter(engine)


#: See migration 0004 and docs/capture.md: present only inside syncstream's own write
#: transactions, never committed, it makes SQLite's capture triggers stand aside.
CAPTURE_MARKER = "syncstream_capture_writer"
_MARKED = "syncstream.capture_marker"


def _mark_capture(engine: Engine) -> None:
    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        info = conn.connection.info
        if not info.get(_MARKED):
            # Until the migration made the table (the migration's own transaction, first).
            found = conn.exec_driver_sql(
                f"SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '{CAPTURE_MARKER}'"
            ).first()
            if found is None:
                return
            info[_MARKED] = True
        conn.exec_driver_sql(f"INSERT OR IGNORE INTO {CAPTURE_MARKER} (id) VALUES (1)")

    @event.listens_for(engine, "commit")
    def _on_commit(conn: Any) -> None:
        if conn.connection.info.get(_MARKED):
            conn.exec_driver_sql(f"DELETE FROM {CAPTURE_MARKER}")


def _configure_sqlite(engine: Engine, *, immediate: bool, capture: bool = False) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        # Take over transaction control from the driver so BEGIN is ours to choose.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    begin = "BEGIN IMMEDIATE" if immediate else "BEGIN"

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql(begin)

    if capture:  # after the BEGIN above: listeners run in the order they were added
        _mark_capture(engine)


@dataclass(frozen=True, slots=True)
class Database:
    """The engines of one database. ``writer`` for transactions that change data;
    on SQLite, ``serial`` runs the server's write transactions (see serial_writer.py)
    and ``writer`` is left to migrations and the command line."""

    url: str
    reader: AsyncEngine
    writer: AsyncEngine
    serial: SerialWriter | None = None
    #: SQLite's point reads on the event loop's thread (see inline_read.py); None elsewhere.
    inline: InlineReader | None = None

    @property
    def dialect(self) -> str:
        return self.writer.dialect.name

    @classmethod
    def connect(
        cls, url: str, *, pool_size: int = 10, serial: bool = False, capture: bool = False
    ) -> Database:
        """``capture``: on SQLite, the write connections mark their transactions as syncstream's
        own for the change-capture triggers (docs/capture.md).
        ``pool_size`` bounds the connections this process holds (PostgreSQL allows 100 by
        default, shared by every process of a deployment). ``serial`` starts SQLite's
        writer thread (a server wants it; a one-shot command does not)."""
        driver_url = async_url(url)
        if make_url(driver_url).get_backend_name() == "sqlite":
            reader = _sqlite_engine(driver_url, immediate=False, pool_size=pool_size)
            writer = _sqlite_engine(driver_url, immediate=True, pool_size=1, capture=capture)
            thread = _serial_writer(driver_url, capture=capture) if serial else None
            inline = InlineReader.for_url(driver_url)
            return cls(url=url, reader=reader, writer=writer, serial=thread, inline=inline)
        engine = create_async_engine(
            driver_url, pool_size=pool_size, max_overflow=pool_size, pool_timeout=30, pool_pre_ping=True
        )
        return cls(url=url, reader=engine, writer=engine)

    async def dispose(self) -> None:
        if self.inline is not None:
            self.inline.close()
        if self.serial is not None:
            await asyncio.to_thread(self.serial.close)
        await self.writer.dispose()
        if self.reader is not self.writer:
            await self.reader.dispose()
