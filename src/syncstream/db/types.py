"""Column types and value helpers shared by every table: opaque IDs and UTC times."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

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
