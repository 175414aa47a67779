"""Column types and value helpers shared by every table: opaque IDs and UTC times."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, UserDefinedType

_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
_ID_SPACE = 36**16


def new_id(prefix: str) -> str:
    """An opaque ID such as ``att_3kq9x0m2c7d1p5ha``: 82 random bits, URL- and log-safe."""
    # One draw from the OS's generator, not one per character: IDs are made on every write.
    n = secrets.randbelow(_ID_SPACE)
    chars = []
    for _ in range(16):
        n, digit = divmod(n, 36)
        chars.append(_ALPHABET[digit])
    return prefix + "_" + "".join(chars)


def utcnow() -> datetime:
    """Now, in UTC, truncated to the millisecond the API shows (so stored == shown)."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def iso_ms(value: datetime) -> str:
    """``2026-11-27T19:00:00.000Z``: the one time format of the API."""
    if value.tzinfo is not None and value.utcoffset():
        value = value.astimezone(UTC)
    # isoformat is C code, several times faster than strftime; every message has two.
    return value.isoformat(timespec="milliseconds")[:23] + "Z"


def stored_iso_ms(value: str | datetime) -> str:
    """A :class:`UTCDateTime` value as the driver returns it, in the format of :func:`iso_ms`.

    SQLite's driver gives the text SQLAlchemy stored (naive UTC, always six fractional
    digits, ``2026-11-27 19:00:00.123456``): slicing it gives the same string as parsing
    it and calling :func:`iso_ms` (which truncates to the millisecond), without the two
    datetimes in between. Anything else (PostgreSQL's aware datetimes, text written by
    hand) takes the exact path.
    """
    if type(value) is str and len(value) == 26 and value[10] == " " and value[19] == ".":
        return value[:10] + "T" + value[11:23] + "Z"
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if not isinstance(value, datetime):
        raise TypeError(f"expected a time from the database, got {type(value).__name__}")
    # A naive value is UTC, as stored; iso_ms formats it as is.
    return iso_ms(value)


class IsoMsText(UserDefinedType[str]):
    """Reads a :class:`UTCDateTime` column straight into the API's text (``type_coerce`` it
    in a SELECT): the activity log's read path, where every row becomes a message and a
    datetime per row was a third of catch-up's CPU. Read-only: it binds nothing."""

    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        raise NotImplementedError("IsoMsText only reads a UTCDateTime column")

    def result_processor(self, dialect: Dialect, coltype: object) -> Any:
        return stored_iso_ms


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend.

    SQLite stores naive values; PostgreSQL returns aware ones. Normalising here keeps
    the rest of the code free of ``tzinfo`` checks.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected datetime, got {type(value).__name__}")
        utc: datetime = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected datetime from the database, got {type(value).__name__}")
        result: datetime = value
        return result.replace(tzinfo=UTC) if result.tzinfo is None else result.astimezone(UTC)
