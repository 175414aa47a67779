"""Stream parameters and cursor resolution, without a server."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from syncstream.stream.cursor import (
    MAX_ACTIVITY_ID,
    CursorOutOfRange,
    InvalidParameter,
    Offset,
    parse_entity_types,
    parse_limit,
    parse_live,
    parse_offset,
    resolve,
)


def test_offset_forms() -> None:
    assert parse_offset(None) == Offset("all")
    assert parse_offset("-1") == Offset("all")
    assert parse_offset("now") == Offset("now")
    assert parse_offset("0") == Offset("after", 0)
    assert parse_offset("42") == Offset("after", 42)
    assert parse_offset("0042") == Offset("after", 42)


@pytest.mark.parametrize("raw", ["", "-2", "abc", "1.5", " 1", "1e3", "now ", "٣", "+1", "0x10"])
def test_malformed_offsets_name_the_parameter(raw: str) -> None:
    with pytest.raises(InvalidParameter) as info:
        parse_offset(raw)
    assert info.value.parameter == "offset"


def test_last_event_id_wins_over_offset() -> None:
    assert parse_offset("now", "17") == Offset("after", 17)
    assert parse_offset("5", "") == Offset("after", 5)  # an empty header is no header
    with pytest.raises(InvalidParameter) as info:
        parse_offset("5", "nope")
    assert info.value.parameter == "Last-Event-ID"


def test_huge_offsets_are_valid_but_beyond_any_id() -> None:
    offset = parse_offset("9" * 500)
    assert offset.id == MAX_ACTIVITY_ID + 1
    with pytest.raises(CursorOutOfRange):
        resolve(offset, newest=10**12, pruned_through=0)


@given(st.integers(min_value=0, max_value=10**30))
def test_any_non_negative_integer_parses(value: int) -> None:
    assert parse_offset(str(value)).id == min(value, MAX_ACTIVITY_ID + 1)


@pytest.mark.parametrize(("raw", "expected"), [(None, 100), ("1", 1), ("1000", 1000)])
def test_limits(raw: str | None, expected: int) -> None:
    assert parse_limit(raw) == expected


@pytest.mark.parametrize("raw", ["0", "1001", "-1", "x", "", "99999999999999"])
def test_bad_limits(raw: str) -> None:
    with pytest.raises(InvalidParameter) as info:
        parse_limit(raw)
    assert info.value.parameter == "limit"


def test_live() -> None:
    assert parse_live(None) is False
    assert parse_live("sse") is True
    with pytest.raises(InvalidParameter):
        parse_live("ws")


def test_entity_types() -> None:
    known = {"attachment"}
    assert parse_entity_types(None, known) is None
    assert parse_entity_types("attachment", known) == {"attachment"}
    for raw in ("", "page", "attachment,", "attachment,page"):
        with pytest.raises(InvalidParameter):
            parse_entity_types(raw, known)


def test_resolve() -> None:
    assert resolve(Offset("all"), newest=9, pruned_through=0).after == 0
    assert resolve(Offset("all"), newest=9, pruned_through=0).reported is None
    assert resolve(Offset("now"), newest=9, pruned_through=0).after == 9
    assert resolve(Offset("now"), newest=0, pruned_through=0).reported is None
    assert resolve(Offset("after", 9), newest=9, pruned_through=0).reported == 9
    with pytest.raises(CursorOutOfRange):
        resolve(Offset("after", 10), newest=9, pruned_through=0)
    # After pruning through 5, a cursor at 5 still continues gaplessly; 4 cannot.
    assert resolve(Offset("after", 5), newest=9, pruned_through=5).after == 5
    with pytest.raises(CursorOutOfRange):
        resolve(Offset("after", 4), newest=9, pruned_through=5)
    assert resolve(Offset("all"), newest=9, pruned_through=5).after == 5
