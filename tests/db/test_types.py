"""The value helpers every table uses: the API's one time format, and opaque IDs."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy.dialects import sqlite

from syncstream.db.types import UTCDateTime, iso_ms, new_id, stored_iso_ms


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (datetime(2026, 1, 2, 3, 4, 5, 678901), "2026-01-02T03:04:05.678Z"),  # naive = UTC (SQLite)
        (datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC), "2026-01-02T03:04:05.678Z"),
        (datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=2))), "2026-01-02T01:04:05.000Z"),
        (datetime(999, 12, 31, 23, 59, 59, 999999), "0999-12-31T23:59:59.999Z"),
    ],
)
def test_times_are_utc_to_the_millisecond(value: datetime, shown: str) -> None:
    assert iso_ms(value) == shown


def test_ids_are_prefixed_lowercase_and_distinct() -> None:
    ids = {new_id("att") for _ in range(10_000)}
    assert len(ids) == 10_000
    assert all(re.fullmatch(r"att_[0-9a-z]{16}", i) for i in ids)
    # Every character position takes every symbol: no position is stuck at a digit.
    for position in range(4, 20):
        assert len({i[position] for i in ids}) == 36


@pytest.mark.parametrize(
    "value",
    [
        datetime(2026, 1, 2, 3, 4, 5, 678901),
        datetime(2026, 1, 2, 3, 4, 5),
        datetime(2026, 1, 2, 3, 4, 5, 999999, tzinfo=UTC),
        datetime(2026, 1, 2, 3, 4, 5, 1000, tzinfo=timezone(timedelta(hours=-11))),
        datetime(999, 12, 31, 23, 59, 59, 999999),
    ],
)
def test_stored_text_and_datetimes_show_as_iso_ms_does(value: datetime) -> None:
    # What SQLite holds: UTCDateTime's bind, then the SQLite dialect's text format.
    dialect = sqlite.dialect()
    utc = UTCDateTime().process_bind_param(value, dialect)
    text = sqlite.DATETIME().bind_processor(dialect)(utc)  # type: ignore[misc]
    assert stored_iso_ms(text) == iso_ms(value)
    assert stored_iso_ms(value) == iso_ms(value)  # what asyncpg returns (aware), or naive


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("2026-01-02 03:04:05", "2026-01-02T03:04:05.000Z"),  # written by hand, no fraction
        ("2026-01-02T03:04:05.678901", "2026-01-02T03:04:05.678Z"),
        ("2026-01-02 03:04:05.6", "2026-01-02T03:04:05.600Z"),
    ],
)
def test_other_stored_text_takes_the_exact_path(text: str, shown: str) -> None:
    assert stored_iso_ms(text) == shown
