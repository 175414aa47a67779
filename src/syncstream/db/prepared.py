"""INSERTs prepared once and run on the driver's cursor, for the hottest writes on SQLite.

Every create writes two rows (the entity and its activity). Through SQLAlchemy's
execution path each INSERT costs ~60 µs of Python on top of SQLite's own few: building
an execution context, processing each parameter, wrapping the cursor. On SQLite, where
all writes share one thread and the GIL, that was a third of a create. A
:class:`PreparedInsert` compiles its statement with SQLAlchemy once per dialect (so the
SQL, the column order and each column type's bind processing are still SQLAlchemy's),
then runs it on the driver's cursor. Driver errors are wrapped exactly as SQLAlchemy
wraps them, so callers still catch ``sqlalchemy.exc.IntegrityError``. Other databases
take the ordinary path.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Table, bindparam, insert
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    columns: tuple[str, ...]
    processors: tuple[Callable[[Any], Any] | None, ...]


class PreparedInsert:
    def __init__(self, table: Table, *, returning_id: bool = False) -> None:
        self.table = table
        self.returning_id = returning_id
        self._columns = tuple(c.name for c in table.columns if not (returning_id and c.primary_key))
        self._portable = insert(table).returning(table.c.id) if returning_id else insert(table)
        self._compiled: _Compiled | None = None

    def execute(self, connection: Connection, values: Mapping[str, Any]) -> int | None:
        """Insert one row with every column given in ``values``; return the new integer ID
        if ``returning_id``."""
        if connection.dialect.name != "sqlite":
            result = connection.execute(self._portable, dict(values))
            return int(result.scalar_one()) if self.returning_id else None
        compiled = self._compiled or self._compile(connection.dialect)
        params = tuple(
            value if process is None else process(value)
            for value, process in zip(
                (values[name] for name in compiled.columns), compiled.processors, strict=True
            )
        )
        cursor = connection.connection.cursor()
        try:
            cursor.execute(compiled.sql, params)
            return cursor.lastrowid if self.returning_id else None
        except connection.dialect.loaded_dbapi.Error as exc:
            raise DBAPIError.instance(
                compiled.sql, params, exc, connection.dialect.loaded_dbapi.Error, dialect=connection.dialect
            ) from exc
        finally:
            cursor.close()

    def _compile(self, dialect: Dialect) -> _Compiled:
        statement = insert(self.table).values({name: bindparam(name) for name in self._columns})
        compiled = statement.compile(dialect=dialect)
        order = tuple(compiled.positiontup or ())
        if set(order) != set(self._columns):
            raise RuntimeError(f"unexpected parameters for {self.table.name}: {order}")
        processors = tuple(
            self.table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in order
        )
        self._compiled = _Compiled(str(compiled), order, processors)
        return self._compiled
