"""Change capture in the database: triggers that record the writes syncstream does not make.

With capture on (``SYNCSTREAM_CAPTURE``, docs/capture.md), every declared entity table gets
triggers, generated from its declaration, that append the activity of each row written by
any other client of the database (``psql``, a migration, another service) in the writing
transaction itself: a rollback records nothing, and the activity ID is drawn as the API's
are (PostgreSQL: after the ordering lock, in a trigger deferred to the commit; SQLite:
one writer at a time).

What syncstream writes itself it records itself, with its ``tx`` and user: its
transactions tell the triggers to stand aside. On PostgreSQL the ordering-lock statement
of ``activities.log.append`` also sets ``syncstream.writing`` for the transaction, and the
triggers, deferred to the commit, see it. On SQLite (no session variables) syncstream's
write connections hold a row of ``syncstream_capture_writer`` from ``BEGIN`` to just
before ``COMMIT`` (``db/engine.py``); nobody else ever sees it, since it is never committed
and there is one writer at a time.

The entity's JSON is rendered in SQL: the declared ``shape`` is run once on a probe whose
attributes are column references, which must come back as a mapping of keys to columns
(as they are, or through ``iso_ms``), constants and nested mappings. A shape that computes
anything else cannot be rendered by a trigger, and enabling capture says so.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import orjson
from sqlalchemy import Column, Connection, inspect, text
from sqlalchemy.types import TypeDecorator

from syncstream._capture_shape import CaptureError, Ref, attribute_columns, column_shape, python_type
from syncstream._entities import EntityType
from syncstream.activities.log import ORDERING_LOCK_KEY
from syncstream.activities.transports.base import POSTGRES_SCHEMES, channel_for_database
from syncstream.config import Settings
from syncstream.db.engine import Database
from syncstream.db.migrate import MIGRATION_LOCK

PREFIX = "syncstream_capture_"
logger = logging.getLogger("syncstream")
MARKER_TABLE = "syncstream_capture_writer"
#: The transaction-local settings a PostgreSQL client may set to say who wrote and which
#: ``tx`` to echo (syncstream's own writes set ``syncstream.writing``).
WRITING_SETTING = "syncstream.writing"


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _timezone(column: Column[Any]) -> bool:
    kind = column.type
    if isinstance(kind, TypeDecorator):
        kind = kind.impl_instance
    return bool(getattr(kind, "timezone", False))


def _value_sql(ref: Ref, row: str, dialect: str) -> str:
    col = f"{row}.{_quote(ref.column.name)}"
    kind = python_type(ref.column)
    if ref.iso:
        if dialect == "postgresql":
            at = f"{col} AT TIME ZONE 'UTC'" if _timezone(ref.column) else col
            return f"""to_char({at}, 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')"""
        # SQLAlchemy's stored text is sliced, as stored_iso_ms does (strftime would round).
        return (
            f"CASE WHEN {col} IS NULL THEN NULL WHEN length({col}) = 26 AND substr({col}, 11, 1) = ' ' "
            f"THEN substr({col}, 1, 10) || 'T' || substr({col}, 12, 12) || 'Z' "
            f"ELSE strftime('%Y-%m-%dT%H:%M:%fZ', {col}) END"
        )
    if kind is bool and dialect == "sqlite":
        return f"CASE WHEN {col} IS NULL THEN NULL WHEN {col} THEN json('true') ELSE json('false') END"
    if kind in (dict, list) and dialect == "sqlite":  # a JSON column is stored as its text
        return f"json({col})"
    if kind is datetime:
        raise CaptureError(f"column {ref.column.name!r}: a date-time in a shape must go through iso_ms")
    return col


def _json_sql(tree: Any, row: str, dialect: str) -> str:
    if isinstance(tree, Ref):
        return _value_sql(tree, row, dialect)
    if isinstance(tree, dict):
        build = "json_build_object" if dialect == "postgresql" else "json_object"
        parts = ", ".join(f"{_literal(k)}, {_json_sql(v, row, dialect)}" for k, v in tree.items())
        return f"{build}({parts})"
    if tree is None:
        return "NULL"
    constant = _literal(orjson.dumps(tree).decode())
    return f"{constant}::json" if dialect == "postgresql" else f"json({constant})"


@dataclass(frozen=True, slots=True)
class _Parts:
    """What the triggers of one entity type need, as SQL over a row alias."""

    entity: EntityType
    tree: dict[str, Any]
    tracked: list[tuple[str, str]]  # (column name, changedKeys name), in column order

    def column(self, attribute: str | None) -> str | None:
        return None if attribute is None else attribute_columns(self.entity)[attribute].name

    def scope_sql(self, row: str) -> tuple[str, str]:
        scope = self.entity.scope
        org, project = self.column(scope.organization), self.column(scope.project)
        return (
            "NULL" if org is None else f"{row}.{_quote(org)}",
            "NULL" if project is None else f"{row}.{_quote(project)}",
        )

    def id_sql(self, row: str) -> str:
        return f"CAST({row}.{_quote(self.column(self.entity.id_attribute) or 'id')} AS TEXT)"

    def changed_sql(self, dialect: str) -> tuple[str, str]:
        """(any tracked column differs, the JSON array of the keys of those that do)."""
        distinct = "IS DISTINCT FROM" if dialect == "postgresql" else "IS NOT"
        tests = [f"NEW.{_quote(c)} {distinct} OLD.{_quote(c)}" for c, _ in self.tracked]
        items = " || ".join(
            f"CASE WHEN {test} THEN {_literal(orjson.dumps(key).decode() + ',')} ELSE '' END"
            for test, (_, key) in zip(tests, self.tracked, strict=True)
        )
        listed = items or "''"
        return " OR ".join(tests) or "FALSE", f"'[' || rtrim({listed}, ',') || ']'"


def _parts(entity: EntityType) -> _Parts:
    tree = column_shape(entity)
    by_column = {col.name: attr for attr, col in attribute_columns(entity).items()}
    tracked = [
        (c.name, entity.key_of(by_column.get(c.name, c.key)))
        for c in entity.table.columns
        if by_column.get(c.name, c.key) not in entity.untracked
    ]
    return _Parts(entity, tree, tracked)


_INSERT = (
    "INSERT INTO activities (type, action, entity_type, entity_id, organization_id, project_id, "
    "user_id, changed_keys, tx, data, idempotency_key, created_at) VALUES "
)


def sqlite_triggers(entity: EntityType) -> list[str]:
    """The three triggers of one entity type on SQLite."""
    parts = _parts(entity)
    table = _quote(entity.table.name)
    now = "strftime('%Y-%m-%d %H:%M:%f', 'now') || '000'"  # SQLAlchemy's stored text
    ours = f"NOT EXISTS (SELECT 1 FROM {MARKER_TABLE})"
    changed, keys = parts.changed_sql("sqlite")
    statements = []
    for op, action, row, when, changed_keys in (
        ("INSERT", "create", "NEW", ours, "NULL"),
        ("UPDATE", "update", "NEW", f"{ours} AND ({changed})", keys),
        ("DELETE", "delete", "OLD", ours, "NULL"),
    ):
        org, project = parts.scope_sql(row)
        event = f"{entity.name}.{action}d"
        values = (
            f"({_literal(event)}, {_literal(action)}, {_literal(entity.name)}, {parts.id_sql(row)}, "
            f"{org}, {project}, NULL, {changed_keys}, NULL, {_json_sql(parts.tree, row, 'sqlite')}, "
            f"NULL, {now})"
        )
        statements.append(
            f"CREATE TRIGGER {_quote(PREFIX + entity.name + '_' + op.lower())} AFTER {op} ON {table} "
            f"FOR EACH ROW WHEN {when} BEGIN {_INSERT}{values}; END"
        )
    return statements


def postgres_triggers(entity: EntityType, notify_channel: str | None) -> list[str]:
    """The function and trigger of one entity type on PostgreSQL: deferred to the commit, so
    the ordering lock covers only the transaction's tail, as on the API's path."""
    parts = _parts(entity)
    name = PREFIX + entity.name
    changed, keys = parts.changed_sql("postgresql")
    org, project = parts.scope_sql("r")
    tx = "NULL" if entity.public else "NULLIF(current_setting('syncstream.tx', true), '')::json::text"
    notify = (
        f"PERFORM pg_notify({_literal(notify_channel)}, new_id::text);" if notify_channel is not None else ""
    )
    body = f"""
DECLARE r record; act text; keys text; new_id bigint;
BEGIN
  IF current_setting('{WRITING_SETTING}', true) = 'on' THEN RETURN NULL; END IF;
  IF TG_OP = 'DELETE' THEN r := OLD; act := 'delete';
  ELSIF TG_OP = 'INSERT' THEN r := NEW; act := 'create';
  ELSE
    IF NOT ({changed}) THEN RETURN NULL; END IF;
    r := NEW; act := 'update'; keys := {keys};
  END IF;
  PERFORM pg_advisory_xact_lock({ORDERING_LOCK_KEY});
  {_INSERT}({_literal(entity.name)} || '.' || act || 'd', act, {_literal(entity.name)}, {parts.id_sql("r")},
    {org}, {project}, NULLIF(current_setting('syncstream.user_id', true), ''), keys, {tx},
    {_json_sql(parts.tree, "r", "postgresql")}::text, NULL, date_trunc('milliseconds', clock_timestamp()))
  RETURNING id INTO new_id;
  {notify}
  RETURN NULL;
END"""
    table = _quote(entity.table.name)
    return [
        f"CREATE OR REPLACE FUNCTION {_quote(name)}() RETURNS trigger LANGUAGE plpgsql "
        f"AS $syncstream${body}$syncstream$",
        f"CREATE CONSTRAINT TRIGGER {_quote(name)} AFTER INSERT OR UPDATE OR DELETE ON {table} "
        f"DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION {_quote(name)}()",
        f"CREATE TRIGGER {_quote(name + '_truncate')} BEFORE TRUNCATE ON {table} "
        f"FOR EACH STATEMENT EXECUTE FUNCTION syncstream_capture_refuse_truncate()",
    ]


_REFUSE_TRUNCATE = """CREATE OR REPLACE FUNCTION syncstream_capture_refuse_truncate() RETURNS trigger
LANGUAGE plpgsql AS $syncstream$ BEGIN
  RAISE EXCEPTION 'syncstream capture: TRUNCATE of % would change rows without their activities; DELETE them',
    TG_TABLE_NAME;
END $syncstream$"""


def _installed(conn: Connection) -> list[str]:
    """DROP statements for every capture trigger (and PostgreSQL function) in place."""
    like = PREFIX.replace("_", r"\_") + "%"
    if conn.dialect.name == "sqlite":
        rows = conn.execute(
            text(r"SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE :p ESCAPE '\'"),
            {"p": like},
        )
        return [f"DROP TRIGGER {_quote(name)}" for (name,) in rows]
    rows = conn.execute(
        text(
            "SELECT t.tgname, c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "WHERE NOT t.tgisinternal AND t.tgname LIKE :p"
        ),
        {"p": like},
    )
    drops = [f"DROP TRIGGER {_quote(name)} ON {_quote(table)}" for name, table in rows]
    functions = conn.execute(
        text("SELECT proname FROM pg_proc WHERE proname LIKE :p AND prokind = 'f'"), {"p": like}
    )
    return drops + [f"DROP FUNCTION {_quote(name)}()" for (name,) in functions]


def install(conn: Connection, entities: list[EntityType], *, notify_channel: str | None = None) -> None:
    """Replace the capture triggers with those of ``entities``, in ``conn``'s transaction."""
    statements = [s for e in entities for s in _statements(conn.dialect.name, e, notify_channel)]
    remove(conn)
    if statements and conn.dialect.name == "postgresql":
        conn.exec_driver_sql(_REFUSE_TRUNCATE)
    for statement in statements:
        conn.exec_driver_sql(statement)


def _statements(dialect: str, entity: EntityType, notify_channel: str | None) -> list[str]:
    if dialect == "sqlite":
        return sqlite_triggers(entity)
    return postgres_triggers(entity, notify_channel)


def remove(conn: Connection) -> None:
    """Drop every capture trigger, in ``conn``'s transaction."""
    for statement in _installed(conn):
        conn.exec_driver_sql(statement)


def installed_types(conn: Connection) -> list[str]:
    """The entity types whose capture triggers are in place (for ``status``)."""
    names = set()
    for drop in _installed(conn):
        if drop.startswith("DROP TRIGGER"):
            name = drop.split('"')[1].removeprefix(PREFIX)
            for suffix in ("_insert", "_update", "_delete", "_truncate"):
                name = name.removesuffix(suffix)
            names.add(name)
    return sorted(names)


async def set_capture(
    database: Database, entities: list[EntityType], *, notify_channel: str | None = None
) -> list[str]:
    """Install the triggers of ``entities`` (none: remove them all) in one transaction; on
    PostgreSQL under the migration lock, so that processes starting together take turns.
    A type whose table does not exist yet is left out (the application creates it later and
    calls ``Syncstream.capture()``); returns the names of the types captured."""

    def apply(conn: Connection) -> list[str]:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        present = [e for e in entities if inspect(conn).has_table(e.table.name, schema=e.table.schema)]
        install(conn, present, notify_channel=notify_channel)
        return [e.name for e in present]

    async with database.writer.begin() as conn:
        return await conn.run_sync(apply)


def notify_channel(settings: Settings) -> str | None:
    """The doorbell's channel when it LISTENs on this very database (the triggers then
    ring it themselves at commit), else None."""
    bus, database = settings.bus_url, settings.database_url
    if urlsplit(bus).scheme.lower() not in POSTGRES_SCHEMES:
        return None
    if channel_for_database(bus) != channel_for_database(database):
        return None
    return settings.bus_channel or channel_for_database(database)


async def apply_settings(database: Database, settings: Settings, entities: list[EntityType]) -> None:
    """Install the triggers of every declared type (capture on), or remove any (off),
    saying which types have no table yet."""
    wanted = entities if settings.capture else []
    captured = await set_capture(database, wanted, notify_channel=notify_channel(settings))
    if wanted:
        missing = sorted({e.name for e in wanted} - set(captured))
        logger.info("change capture on: %s", ", ".join(captured) or "no table yet")
        if missing:
            logger.warning(
                "change capture: no table yet for %s: call sync.capture() once it exists",
                ", ".join(missing),
            )
