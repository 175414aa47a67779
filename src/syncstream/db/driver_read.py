"""SELECTs run on SQLite's driver connection, for the log's catch-up reads.

Catch-up turns every row it reads into a message, tens of thousands a second. Through
SQLAlchemy's result machinery each row costs ~3 µs of Python on top of the driver's
own fetch (the adapted cursor handing rows out one by one, a ``Row`` per row, the
result processors): a fifth of catch-up. :func:`fetch_all` compiles the statement
with SQLAlchemy (so the SQL is still SQLAlchemy's) and takes the driver's tuples as
they come. Other databases take the ordinary path. Statements are compiled once each
(building and compiling the SELECT was ~0.6 ms a page, another ~0.6 µs per row).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import Select
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection


def is_sqlite(conn: AsyncConnection) -> bool:
    return conn.dialect.name == "sqlite"


async def fetch_all(
    conn: AsyncConnection, query: Select[Any], params: Mapping[str, Any] | None = None
) -> Sequence[Sequence[Any]]:
    r"""Every row of ``query`` with its ``bindparam``\ s set from ``params``: the driver's
    raw values on SQLite (no result processing, so a column whose type converts values
    arrives unconverted), SQLAlchemy's rows elsewhere.

    Only for statements whose parameters are plain integers and strings: those are the
    values SQLite's driver takes as they are, so no bind processing is skipped. The SQL
    is compiled once per statement object: reuse one (with bind parameters) for reads
    that repeat.
    """
    if not is_sqlite(conn):
        result: Sequence[Sequence[Any]] = (await conn.execute(query, dict(params or {}))).all()
        return result
    sql, values = compile_for(query, conn.dialect, params)
    raw = await conn.get_raw_connection()
    driver: Any = raw.driver_connection
    try:
        # One hop to the driver's thread (execute, fetch and close there) where its cursor
        # API takes three; the hook fetch_within uses too.
        rows: Sequence[Sequence[Any]] = await driver._execute(fetch_rows, driver._conn, sql, values)
    except sqlite3.Error as exc:
        # Wrapped as SQLAlchemy wraps driver errors, so callers catch the same exceptions.
        raise DBAPIError.instance(sql, values, exc, sqlite3.Error, dialect=conn.dialect) from exc
    return rows


def compile_for(
    query: Select[Any], dialect: Dialect, params: Mapping[str, Any] | None = None
) -> tuple[str, tuple[Any, ...]]:
    """``query``'s SQL for SQLite's driver (compiled once per statement) and its values."""
    sql, names, literals = _compile(query, dialect)
    given = params or {}
    values = tuple(given[name] if name in given else literals[name] for name in names)
    _check(values)
    return sql, values


async def fetch_within(
    conn: AsyncConnection,
    query: Select[Any],
    params: Mapping[str, Any],
    *,
    sized: Sequence[int],
    overhead: int,
    max_bytes: int,
) -> tuple[list[Sequence[Any]], bool]:
    """SQLite only: the rows of ``query`` as :func:`fetch_all` reads them, but stepping the
    statement on the driver's own thread and stopping before the row that would take the
    text of the columns at ``sized`` (plus ``overhead`` per row) past ``max_bytes``; the
    first row is always taken. Returns the rows and whether the bound stopped the read.

    ``fetchall`` would hold every row of the statement at once: a thousand activities of
    500 KiB each is 500 MB. Stepping row by row on the driver's thread keeps what one read
    holds to ``max_bytes`` and one row, at the cost of a Python loop over the rows (the
    SQLite fast path's C ``fetchall`` otherwise). This reaches into aiosqlite's thread
    (``Connection._execute``, the hook its own methods use; the version is pinned).
    """
    sql, values = compile_for(query, conn.dialect, params)
    raw = await conn.get_raw_connection()
    driver: Any = raw.driver_connection
    try:
        rows, cut = await driver._execute(
            take_within, driver._conn, sql, values, tuple(sized), overhead, max_bytes
        )
    except sqlite3.Error as exc:
        raise DBAPIError.instance(sql, values, exc, sqlite3.Error, dialect=conn.dialect) from exc
    return rows, cut


def fetch_rows(connection: sqlite3.Connection, sql: str, values: tuple[Any, ...]) -> list[Any]:
    """Every row of ``sql`` on ``connection`` (run where that connection lives)."""
    cursor = connection.execute(sql, values)
    try:
        return cursor.fetchall()
    finally:
        cursor.close()


def take_within(
    connection: sqlite3.Connection,
    sql: str,
    values: tuple[Any, ...],
    sized: tuple[int, ...],
    overhead: int,
    max_bytes: int,
) -> tuple[list[Sequence[Any]], bool]:
    """On the driver's thread: step ``sql`` until the next row would pass ``max_bytes``."""
    rows: list[Sequence[Any]] = []
    total = 0
    cursor = connection.execute(sql, values)
    try:
        for row in cursor:
            total += overhead
            for index in sized:
                text = row[index]
                if text is not None:
                    # isascii() is a flag check; only other text is measured as UTF-8.
                    total += len(text) if text.isascii() else len(text.encode())
            if total > max_bytes and rows:
                return rows, True
            rows.append(row)
        return rows, False
    finally:
        cursor.close()


@lru_cache(maxsize=1024)
def _compile(query: Select[Any], dialect: Dialect) -> tuple[str, tuple[str, ...], dict[str, Any]]:
    # render_postcompile expands IN lists into one "?" each, in positional order.
    compiled = query.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
    return str(compiled), tuple(compiled.positiontup or ()), dict(compiled.params)


def _check(values: tuple[Any, ...]) -> None:
    if any(type(value) not in (int, str) for value in values):
        raise TypeError(f"fetch_all binds only integers and strings: {values!r}")
