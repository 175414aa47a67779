"""Point reads on SQLite made on the event loop's own thread, without the pool.

A read through the pool hands the statement to the driver's thread and the answer back:
two thread switches, each a fight for the GIL with every other driver thread. For a row
that SQLite finds in a few microseconds that hand-off is nearly all the cost (0.4 ms of
CPU per resuming stream, measured, when the read itself is ~10 µs). So the one check
every resume makes (how far history was pruned) is read here, on a plain ``sqlite3``
connection of its own, in WAL mode, where a reader never waits for the writer.

Only for reads of a row or two by key. Anything that may scan goes through the pool,
whose thread keeps the loop free meanwhile. If the database is busy (a checkpoint or a
recovery holds it for a moment) the read gives up at once and the caller takes the pool
instead: the loop never waits on a lock here.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar
from urllib.parse import quote

from sqlalchemy import Select
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import make_url

from syncstream.db.driver_read import compile_for, fetch_rows, take_within

T = TypeVar("T")


class InlineReader:
    """A read-only ``sqlite3`` connection for point reads, opened at its first use."""

    __slots__ = ("_connection", "_path")

    _DIALECT = sqlite_dialect.dialect()

    def __init__(self, path: str) -> None:
        self._path = path
        self._connection: sqlite3.Connection | None = None

    @classmethod
    def for_url(cls, url: str) -> InlineReader | None:
        """The reader of a SQLite file URL; None for another database or an in-memory one."""
        parsed = make_url(url)
        if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
            return None
        return cls(parsed.database)

    def fetch(self, query: Select[Any], params: Mapping[str, Any] | None = None) -> Sequence[Any] | None:
        """The rows of ``query``, or None when they cannot be read at once (take the pool)."""
        return self._run(query, params, fetch_rows)

    def fetch_within(
        self,
        query: Select[Any],
        params: Mapping[str, Any],
        *,
        sized: Sequence[int],
        overhead: int,
        max_bytes: int,
    ) -> tuple[list[Sequence[Any]], bool] | None:
        """:func:`~syncstream.db.driver_read.fetch_within` on this connection, or None
        when it cannot be read at once. Keep ``query``'s limit small: the loop waits."""
        return self._run(query, params, take_within, tuple(sized), overhead, max_bytes)

    def _run(
        self, query: Select[Any], params: Mapping[str, Any] | None, read: Callable[..., T], *args: Any
    ) -> T | None:
        """``read(connection, sql, values, *args)`` with ``query`` compiled, or None on any
        SQLite error (busy, no such table, no such file)."""
        sql, values = compile_for(query, self._DIALECT, params)
        try:
            return read(self._connection or self._open(), sql, values, *args)
        except sqlite3.Error:
            return None

    def _open(self) -> sqlite3.Connection:
        # check_same_thread off: a test client may run the app's loop on another thread
        # than the one that built it; only that loop's thread ever uses it.
        # mode=rw: never create a file where the database should be.
        connection = sqlite3.connect(
            f"file:{quote(self._path)}?mode=rw", uri=True, isolation_level=None, check_same_thread=False
        )
        connection.execute("PRAGMA busy_timeout=0")
        self._connection = connection
        return connection

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
