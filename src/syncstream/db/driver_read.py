"""SELECTs run on SQLite's driver connection, for the log's catch-up reads.

Catch-up turns every row it reads into a message, tens of thousands a second. Through
SQLAlchemy's result machinery each row costs ~3 µs of Python on top of the driver's
own fetch (the adapted cursor handing rows out one by one, a ``Row`` per row, the
result processors): a fifth of catch-up. :func:`fetch_all` compiles the statement
with SQLAlchemy (so the SQL is still SQLAlchemy's) and takes the driver's tuples as
they come. Other databases take the ordinary path.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection


def is_sqlite(conn: AsyncConnection) -> bool:
    return conn.dialect.name == "sqlite"


async def fetch_all(conn: AsyncConnection, query: Select[Any]) -> Sequence[Sequence[Any]]:
    """Every row of ``query``: the driver's raw values on SQLite (no result processing,
    so a column whose type converts values arrives unconverted), SQLAlchemy's rows elsewhere.

    Only for statements whose parameters are plain integers and strings: those are the
    values SQLite's driver takes as they are, so no bind processing is skipped.
    """
    if not is_sqlite(conn):
        result: Sequence[Sequence[Any]] = (await conn.execute(query)).all()
        return result
    # render_postcompile expands IN lists into one "?" each, in positional order.
    compiled = query.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    params = tuple(compiled.params[name] for name in compiled.positiontup or ())
    if any(type(value) not in (int, str) for value in params):
        raise TypeError(f"fetch_all binds only integers and strings: {params!r}")
    sql = str(compiled)
    raw = await conn.get_raw_connection()
    try:
        async with raw.driver_connection.execute(sql, params) as cursor:  # type: ignore[union-attr]
            rows: Sequence[Sequence[Any]] = await cursor.fetchall()
    except sqlite3.Error as exc:
        # Wrapped as SQLAlchemy wraps driver errors, so callers catch the same exceptions.
        raise DBAPIError.instance(sql, params, exc, sqlite3.Error, dialect=conn.dialect) from exc
    return rows
