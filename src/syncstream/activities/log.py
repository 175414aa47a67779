"""Reading and writing the activity log.

Commit order is ID order. On SQLite there is one writer at a time, so an ID is
assigned and committed before the next one is assigned. On PostgreSQL, concurrent
transactions could take IDs 41 and 42 and commit 42 first; a reader that saw 42 and
moved past 41 would lose it. So every transaction takes a transaction-scoped advisory
lock just before it inserts its activity and holds it until it commits: IDs are drawn
from the sequence in commit order, and a visible ID means every smaller one has
committed or never will. The lock covers only the tail of each write transaction.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from functools import lru_cache
from itertools import starmap
from typing import Any

import orjson
from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    Table,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    type_coerce,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.dml import Insert
from sqlalchemy.sql.functions import FunctionElement

from syncstream.activities.model import Activity, NewActivity
from syncstream.db.driver_read import fetch_all, fetch_within, is_sqlite
from syncstream.db.inline_read import InlineReader
from syncstream.db.prepared import PreparedInsert
from syncstream.db.schema import Activity as ActivityRow
from syncstream.db.schema import LogState
from syncstream.db.types import IsoMsText, stored_iso_ms, utcnow
from syncstream.permissions import ReadScope

ORDERING_LOCK_KEY = 0x5359_4E44
PRUNED_THROUGH = "pruned_through"

_t: Table = ActivityRow.__table__  # type: ignore[assignment]
_COLUMNS = (
    _t.c.id,
    _t.c.type,
    _t.c.action,
    _t.c.entity_type,
    _t.c.entity_id,
    _t.c.organization_id,
    _t.c.project_id,
    _t.c.user_id,
    _t.c.changed_keys,
    _t.c.tx,
    _t.c.data,
    # Straight to the API's text: read_after's rows only ever become messages.
    type_coerce(_t.c.created_at, IsoMsText()).label("created_at"),
)


def _json(value: object | None) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


_INSERT = PreparedInsert(_t, returning_id=True)


def _locked_insert() -> Insert:
    """PostgreSQL's append: the ordering lock and the INSERT in one statement, one round
    trip (the lock is held from there to the commit, so every round trip saved inside it
    is saved for every writer waiting on it).

    The lock is taken in a ``MATERIALIZED`` CTE that the INSERT's rows are selected from:
    PostgreSQL runs it (and waits for the lock) before the row exists, so the ID is drawn
    from the sequence afterwards, under the lock, exactly as with a statement of its own.

    The same CTE tells change capture's triggers (docs/capture.md) that syncstream records
    this transaction itself: the setting is transaction-local, and the triggers, deferred
    to the commit, see it whenever in the transaction the row was written.
    """
    lock = select(
        func.pg_advisory_xact_lock(ORDERING_LOCK_KEY).label("locked"),
        func.set_config("syncstream.writing", "on", True).label("writing"),
    )
    locked = lock.cte("ordering_lock").prefix_with("MATERIALIZED")
    columns = [c for c in _t.columns if not c.primary_key]
    row = select(*(bindparam(c.name, type_=c.type) for c in columns)).select_from(locked)
    return insert(_t).from_select([c.name for c in columns], row).returning(_t.c.id)


_LOCKED_INSERT = _locked_insert()


def append(session: Session, new: NewActivity) -> int:
    """Insert ``new`` in the caller's transaction and return its ID."""
    conn = session.connection()
    values = {
        "type": new.type,
        "action": new.action,
        "entity_type": new.entity_type,
        "entity_id": new.entity_id,
        "organization_id": new.organization_id,
        "project_id": new.project_id,
        "user_id": new.user_id,
        "changed_keys": _json(new.changed_keys),
        "tx": _json(new.tx),
        "data": _json(new.data),
        "idempotency_key": new.idempotency_key,
        "created_at": utcnow(),
    }
    if conn.dialect.name == "postgresql":
        return int(conn.execute(_LOCKED_INSERT, values).scalar_one())
    activity_id = _INSERT.execute(conn, values)
    assert activity_id is not None
    return activity_id


class LogPage(list[Activity]):
    """The activities of one read, ascending. ``cut`` is True when the read stopped at its
    byte bound with fewer than ``limit`` activities: the log may go on after the last."""

    cut = False


#: What an activity's message adds to its stored JSON (IDs, action, types, time, keys),
#: counted in its size so that a page's messages stay within the byte bound.
MESSAGE_OVERHEAD_BYTES = 400


class _byte_length(FunctionElement[int]):
    """The size in bytes of a text column, reading as little as the database allows."""

    type = Integer()
    inherit_cache = True


@compiles(_byte_length)
def _byte_length_default(element: _byte_length, compiler: SQLCompiler, **kw: Any) -> str:
    # PostgreSQL's octet_length reads a TOASTed value's stored size without fetching it.
    return f"octet_length({compiler.process(element.clauses, **kw)})"


@compiles(_byte_length, "sqlite")
def _byte_length_sqlite(element: _byte_length, compiler: SQLCompiler, **kw: Any) -> str:
    # length() of text counts characters; as a blob it counts bytes (UTF-8: the same bytes).
    return f"length(CAST({compiler.process(element.clauses, **kw)} AS BLOB))"


def _size(column: ColumnElement[Any]) -> ColumnElement[int]:
    return func.coalesce(_byte_length(column), 0)


async def read_after(
    conn: AsyncConnection,
    after: int,
    *,
    limit: int,
    max_bytes: int | None = None,
    organization_id: str | None = None,
    entity_types: Collection[str] | None = None,
    scope: ReadScope | None = None,
) -> LogPage:
    """Activities with ID > ``after``, ascending, filtered in SQL so that catch-up of a
    narrow subscriber does not drag the whole log through Python.

    With ``max_bytes``, the database itself stops the read once the activities' sizes
    (their stored JSON plus :data:`MESSAGE_OVERHEAD_BYTES` each) would pass it, and only
    those rows are sent: what one read holds in memory is bounded by bytes as well as
    rows. The first activity is always read, however large, so a reader always moves on.
    """
    projects = None
    if scope is not None and not scope.everything:
        if not scope.unscoped and not scope.project_ids:
            return LogPage()
        projects = (scope.unscoped, tuple(sorted(scope.project_ids)))
    types = None if entity_types is None else tuple(sorted(entity_types))
    probed = None
    cut = False
    if max_bytes is None:
        rows = await fetch_all(
            conn, _query_after(organization_id, types, projects), {"after": after, "limit": limit}
        )
    elif is_sqlite(conn):
        # SQLite reads the rows on its driver's thread, stopping at the bound (sizes in SQL
        # would load every value once more: several times the cost of the read itself).
        params = {"after": after, "limit": limit}
        query = _query_after(organization_id, types, projects)
        rows, cut = await fetch_within(
            conn, query, params, sized=_SIZED, overhead=MESSAGE_OVERHEAD_BYTES, max_bytes=max_bytes
        )
    else:
        query = _query_after_bounded(organization_id, types, projects)
        rows = await fetch_all(conn, query, {"after": after, "limit": limit, "bytes": max_bytes})
        # The last column is the last ID the size probe saw: past the last row read, the
        # byte bound cut the read.
        probed = rows[0][-1] if rows else None
        rows = [row[:-1] for row in rows]
    # Columns are selected in field order. SQLite's raw rows hold created_at as stored
    # (IsoMsText did not run); elsewhere starmap builds the activities with no Python
    # call per row of its own.
    page = _sqlite_page(rows) if is_sqlite(conn) else LogPage(starmap(Activity, rows))
    page.cut = cut or (probed is not None and probed > page[-1].id)
    return page


def read_after_inline(reader: InlineReader, after: int, *, limit: int, max_bytes: int) -> LogPage | None:
    """:func:`read_after` of the whole log on SQLite's inline reader (db/inline_read.py),
    or None when it cannot be read at once: for small reads that the event loop can wait
    for (a few rows take less than the hand-off to the driver's thread would)."""
    params = {"after": after, "limit": limit}
    got = reader.fetch_within(
        _query_after(None, None, None),
        params,
        sized=_SIZED,
        overhead=MESSAGE_OVERHEAD_BYTES,
        max_bytes=max_bytes,
    )
    if got is None:
        return None
    rows, cut = got
    page = _sqlite_page(rows)
    page.cut = cut
    return page


def _sqlite_page(rows: Sequence[Sequence[Any]]) -> LogPage:
    """SQLite's raw rows (``_COLUMNS``, created_at as stored) as activities."""
    return LogPage([Activity(*row[:-1], stored_iso_ms(row[-1])) for row in rows])  # type: ignore[call-arg]


#: The columns of ``_COLUMNS`` whose text is counted in an activity's size.
_SIZED = tuple(i for i, column in enumerate(_COLUMNS) if column.name in ("changed_keys", "tx", "data"))


def _filters(
    organization_id: str | None,
    entity_types: tuple[str, ...] | None,
    projects: tuple[bool, tuple[str, ...]] | None,
) -> list[ColumnElement[bool]]:
    where = [_t.c.id > bindparam("after", 0, type_=Integer())]
    if organization_id is not None:
        where.append(_t.c.organization_id == organization_id)
    if entity_types is not None:
        where.append(_t.c.entity_type.in_(entity_types))
    if projects is not None:
        unscoped, project_ids = projects
        allowed = []
        if unscoped:
            allowed.append(_t.c.project_id.is_(None))
        if project_ids:
            allowed.append(_t.c.project_id.in_(project_ids))
        where.append(or_(*allowed))
    return where


@lru_cache(maxsize=1024)
def _query_after(
    organization_id: str | None,
    entity_types: tuple[str, ...] | None,
    projects: tuple[bool, tuple[str, ...]] | None,
) -> Select[Any]:
    """The read of one filter, with ``after`` and ``limit`` left as bind parameters: a
    catch-up reads page after page with the same filter, and one statement object is
    compiled once (see ``fetch_all``). Their placeholder values (compiling needs some)
    are always replaced."""
    query = select(*_COLUMNS).where(*_filters(organization_id, entity_types, projects))
    return query.order_by(_t.c.id).limit(bindparam("limit", 0, type_=Integer()))


@lru_cache(maxsize=1024)
def _query_after_bounded(
    organization_id: str | None,
    entity_types: tuple[str, ...] | None,
    projects: tuple[bool, tuple[str, ...]] | None,
) -> Select[Any]:
    """``_query_after`` bounded by ``bytes`` as well as ``limit``, in one statement.

    A probe reads the IDs and sizes of up to ``limit`` matching activities with a running
    total, never their contents; the read proper then fetches the rows up to the last
    one within ``bytes`` (the first always). Each row carries the probe's last ID, which
    tells the caller whether the bound cut the read.
    """
    where = _filters(organization_id, entity_types, projects)
    size = _size(_t.c.data) + _size(_t.c.tx) + _size(_t.c.changed_keys) + MESSAGE_OVERHEAD_BYTES
    probe = (
        select(
            _t.c.id.label("id"),
            func.sum(size).over(order_by=_t.c.id, rows=(None, 0)).label("running"),
            func.row_number().over(order_by=_t.c.id).label("n"),
        )
        .where(*where)
        .order_by(_t.c.id)
        .limit(bindparam("limit", 0, type_=Integer()))
        .cte("probe")
    )
    within = or_(probe.c.running <= bindparam("bytes", 0, type_=Integer()), probe.c.n == 1)
    last_within = select(func.max(probe.c.id)).where(within).scalar_subquery()
    last_probed = select(func.max(probe.c.id)).scalar_subquery()
    query = select(*_COLUMNS, last_probed.label("probed")).where(*where, _t.c.id <= last_within)
    return query.order_by(_t.c.id)


# Built once, and read through the driver on SQLite (db/driver_read.py): every stream
# that resumes reads both, and SQLAlchemy's execution (a BEGIN, the statement, a
# ROLLBACK, each a hop to the driver's thread) cost 0.5 ms of CPU where this takes 0.1.
_NEWEST = select(func.coalesce(func.max(_t.c.id), 0))
_PRUNED = select(LogState.value).where(LogState.key == bindparam("key"))


async def newest_id(conn: AsyncConnection) -> int:
    """The highest committed activity ID, 0 for an empty log."""
    return int((await fetch_all(conn, _NEWEST))[0][0])


_BEFORE_NEWEST = (
    select(_t.c.id).order_by(_t.c.id.desc()).limit(1).offset(bindparam("count", 0, type_=Integer()))
)


async def id_before_newest(conn: AsyncConnection, count: int) -> int:
    """The ID just below the newest ``count`` activities (0 when the log holds no more)."""
    rows = await fetch_all(conn, _BEFORE_NEWEST, {"count": count})
    return int(rows[0][0]) if rows else 0


async def pruned_through(conn: AsyncConnection) -> int:
    """Every activity with an ID at or below this was deleted by an operator."""
    return _pruned_value(await fetch_all(conn, _PRUNED, {"key": PRUNED_THROUGH}))


def newest_and_pruned_inline(reader: InlineReader) -> tuple[int, int] | None:
    """:func:`newest_id` and :func:`pruned_through`, read on the loop's thread; None if
    they cannot be at once."""
    newest = reader.fetch(_NEWEST)
    pruned = reader.fetch(_PRUNED, {"key": PRUNED_THROUGH}) if newest is not None else None
    if newest is None or pruned is None:
        return None
    return int(newest[0][0]), _pruned_value(pruned)


def _pruned_value(rows: Sequence[Sequence[Any]]) -> int:
    return int(rows[0][0] or 0) if rows else 0


async def find_by_idempotency_key(session: AsyncSession, key: str) -> str | None:
    """The entity ID created under ``key``, if any."""
    return await session.scalar(select(_t.c.entity_id).where(_t.c.idempotency_key == key))


async def prune(session: AsyncSession, before: datetime) -> tuple[int, int]:
    """Delete activities older than ``before``, always keeping the newest one (it anchors
    the "offset beyond the newest ID" check). Returns (rows deleted, new pruned-through)."""
    newest = int((await session.execute(select(func.coalesce(func.max(_t.c.id), 0)))).scalar_one())
    cut = await session.scalar(select(func.max(_t.c.id)).where(_t.c.created_at < before, _t.c.id < newest))
    if cut is None:
        return 0, await _pruned_through_session(session)
    result = await session.execute(delete(_t).where(_t.c.id <= cut))
    current = await _pruned_through_session(session)
    mark = max(current, int(cut))
    row = await session.get(LogState, PRUNED_THROUGH)
    if row is None:
        session.add(LogState(key=PRUNED_THROUGH, value=mark))
    else:
        row.value = mark
    return int(getattr(result, "rowcount", 0) or 0), mark


async def _pruned_through_session(session: AsyncSession) -> int:
    value = await session.scalar(select(LogState.value).where(LogState.key == PRUNED_THROUGH))
    return int(value or 0)
