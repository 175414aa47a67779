"""Change capture's view of a declared shape: which columns it maps to which keys.

A trigger cannot call Python, so the declared ``shape`` is run on probe rows whose attributes
stand for the columns; what comes back must be a JSON object of columns (as they are, or
through ``iso_ms``), constants and nested objects (see docs/capture.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Column, inspect
from sqlalchemy.types import TypeDecorator

from syncstream._entities import EntityType
from syncstream.db.types import iso_ms


class CaptureError(ValueError):
    """A declared entity type whose activities a trigger cannot write as the API does."""


# -- the shape as columns --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ref:
    """A column, as the shape reads it; anything done with it but placing it is refused."""

    column: Column[Any]
    iso: bool = False

    def __bool__(self) -> bool:
        raise CaptureError("a shape that tests a column's value")

    def __str__(self) -> str:
        raise CaptureError("a shape that converts a column's value")

    __format__ = None  # type: ignore[assignment]


class _Probe:
    """Stands for a row: each column attribute is a :class:`Ref`, and a date-time column a
    distinct datetime whose ``iso_ms`` text is recognised in the shape's result."""

    def __init__(self, entity: EntityType, year: int) -> None:
        self._columns = attribute_columns(entity)
        self._times: dict[str, Column[Any]] = {}
        self._year = year

    def __getattr__(self, name: str) -> Any:
        column = self._columns.get(name)
        if column is None:
            raise CaptureError(f"a shape that reads {name!r}, which is not a column")
        if python_type(column) is datetime:
            moment = datetime(self._year, 2, 3, 4, 5, 6, 789123, tzinfo=UTC) + timedelta(
                days=len(self._times)
            )
            self._times[iso_ms(moment)] = column
            return moment
        return Ref(column)


def attribute_columns(entity: EntityType) -> dict[str, Column[Any]]:
    if entity.model is not None:
        return {p.key: p.columns[0] for p in inspect(entity.model).column_attrs}
    return {c.key: c for c in entity.table.columns}


def python_type(column: Column[Any]) -> type | None:
    kind = column.type
    if isinstance(kind, TypeDecorator):  # its own python_type says ``object``
        kind = kind.impl_instance
    try:
        found: type = kind.python_type
        return found
    except NotImplementedError:
        return None


def column_shape(entity: EntityType) -> dict[str, Any]:
    """The declared shape as a tree of :class:`Ref` and JSON constants; :class:`CaptureError`
    if it is not one.

    The shape runs on two probes whose date-times differ: text computed from a date-time
    other than by ``iso_ms`` would pass for a constant in one run, and differs between the two.
    """
    first, second = _probe_shape(entity, 2001), _probe_shape(entity, 2011)
    if _comparable(first) != _comparable(second):
        raise CaptureError(
            f"entity type {entity.name!r}: its shape computes a value from a date-time column other than "
            "with iso_ms(column): capture cannot render it in SQL"
        )
    if not _same_constants(first, _null_shape(entity)):
        raise CaptureError(
            f"entity type {entity.name!r}: its shape tests a column (`is None`?): "
            "capture cannot render it in SQL"
        )
    return first


class _NullRow:
    """A row of NULLs (date-times aside, for ``iso_ms``): a constant of the shape that changes
    with it was computed from a column."""

    def __init__(self, entity: EntityType) -> None:
        self._columns = attribute_columns(entity)

    def __getattr__(self, name: str) -> datetime | None:
        column = self._columns.get(name)
        if column is None:
            raise AttributeError(name)
        return datetime(2021, 1, 1, tzinfo=UTC) if python_type(column) is datetime else None


def _null_shape(entity: EntityType) -> Any:
    try:
        return entity.shape(_NullRow(entity))
    except Exception:  # a shape may well fail on NULLs (iso_ms(None)): nothing to compare
        return None


def _same_constants(tree: Any, other: Any) -> bool:
    if other is None or isinstance(tree, Ref):
        return True
    if isinstance(tree, dict):
        return isinstance(other, Mapping) and all(_same_constants(v, other.get(k)) for k, v in tree.items())
    return bool(tree == other)


def _comparable(tree: Any) -> Any:
    if isinstance(tree, Ref):
        return ("column", tree.column.name, tree.iso)
    if isinstance(tree, dict):
        return {k: _comparable(v) for k, v in tree.items()}
    return tree


def _probe_shape(entity: EntityType, year: int) -> dict[str, Any]:
    probe = _Probe(entity, year)
    try:
        result = entity.shape(probe)
    except CaptureError as exc:
        raise CaptureError(f"entity type {entity.name!r}: {exc}: capture cannot render it in SQL") from None
    except Exception as exc:
        raise CaptureError(f"entity type {entity.name!r}: its shape failed on a probe row: {exc!r}") from exc
    if not isinstance(result, Mapping):
        raise CaptureError(f"entity type {entity.name!r}: its shape is not a JSON object")
    tree: dict[str, Any] = _tree(entity, result, probe)
    return tree


def _tree(entity: EntityType, value: Any, probe: _Probe) -> Any:
    if isinstance(value, Ref):
        return value
    if isinstance(value, str) and value in probe._times:
        return Ref(probe._times[value], iso=True)
    if isinstance(value, Mapping):
        return {str(k): _tree(entity, v, probe) for k, v in value.items()}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise CaptureError(
        f"entity type {entity.name!r}: its shape holds a {type(value).__name__}, which capture "
        "cannot render in SQL (a shape for capture maps keys to columns, iso_ms(column) or constants)"
    )
