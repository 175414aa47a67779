"""The tailer's window of recent activities (``activities/recent.py``): its one invariant,
every activity above ``floor`` (up to the newest appended) is held, in ID order, so
``between`` answers exactly what a read of the log would, or None when it cannot."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from syncstream.activities.model import Activity
from syncstream.activities.recent import ACTIVITY_OVERHEAD_BYTES, RecentActivities, held_bytes


def activity(activity_id: int, data_bytes: int = 0) -> Activity:
    return Activity(
        id=activity_id,
        type="attachment.created",
        action="create",
        entity_type="attachment",
        entity_id=f"at_{activity_id}",
        organization_id="org_1",
        project_id=None,
        user_id=None,
        changed_keys=None,
        tx=None,
        data="x" * data_bytes if data_bytes else None,
        created_iso="2026-01-01T00:00:00.000Z",
    )


def ids(found: list[Activity] | None) -> list[int] | None:
    return None if found is None else [a.id for a in found]


def test_held_bytes_counts_the_texts_and_the_overhead() -> None:
    a = activity(1)
    assert held_bytes(a) == ACTIVITY_OVERHEAD_BYTES
    a.data, a.tx, a.changed_keys = "abcd", "xy", '["k"]'
    assert held_bytes(a) == ACTIVITY_OVERHEAD_BYTES + 4 + 2 + 5


def test_between_answers_the_held_range_and_none_below_the_floor() -> None:
    recent = RecentActivities(max_count=100, max_bytes=1 << 20)
    recent.reset(10, [activity(i) for i in (11, 12, 15, 20)])
    assert recent.floor == 10
    assert len(recent) == 4
    assert ids(recent.between(10, 20, 100)) == [11, 12, 15, 20]
    assert ids(recent.between(11, 15, 100)) == [12, 15]
    assert ids(recent.between(12, 14, 100)) == []  # a gap in the IDs: nothing between
    assert ids(recent.between(10, 20, 2)) == [11, 12]  # at most ``limit``
    assert ids(recent.between(20, 30, 100)) == []  # nothing newer than the newest held
    assert recent.between(9, 20, 100) is None  # activity 10 may exist and is not held
    assert recent.covers(10)
    assert not recent.covers(9)


def test_extend_appends_after_what_is_held() -> None:
    recent = RecentActivities(max_count=100, max_bytes=1 << 20)
    recent.reset(0)
    assert ids(recent.between(0, 5, 10)) == []
    recent.extend([activity(1), activity(3)])
    recent.extend([activity(4)])
    assert ids(recent.between(0, 4, 10)) == [1, 3, 4]
    assert recent.held_bytes == 3 * ACTIVITY_OVERHEAD_BYTES


def test_reset_forgets_what_was_held() -> None:
    recent = RecentActivities(max_count=100, max_bytes=1 << 20)
    recent.extend([activity(i) for i in range(1, 6)])
    recent.reset(50, [activity(51), activity(52)])
    assert recent.floor == 50
    assert ids(recent.between(50, 60, 10)) == [51, 52]
    assert recent.between(4, 60, 10) is None
    assert recent.held_bytes == 2 * ACTIVITY_OVERHEAD_BYTES


def test_passing_the_count_trims_to_three_quarters_and_raises_the_floor() -> None:
    recent = RecentActivities(max_count=8, max_bytes=1 << 20)
    recent.extend([activity(i) for i in range(1, 9)])
    assert len(recent) == 8  # at the bound: nothing dropped yet
    assert recent.floor == 0
    recent.extend([activity(9)])
    assert len(recent) == 6  # 8 * 3 // 4
    assert recent.floor == 3
    assert ids(recent.between(3, 9, 100)) == [4, 5, 6, 7, 8, 9]
    assert recent.between(2, 9, 100) is None
    assert recent.held_bytes == 6 * ACTIVITY_OVERHEAD_BYTES


def test_passing_the_bytes_trims_the_oldest() -> None:
    size = ACTIVITY_OVERHEAD_BYTES + 100
    recent = RecentActivities(max_count=1000, max_bytes=4 * size)
    recent.extend([activity(i, 100) for i in range(1, 5)])
    assert recent.held_bytes == 4 * size
    recent.extend([activity(5, 100)])
    assert recent.held_bytes == 3 * size  # down to three quarters of the bound
    assert recent.floor == 2
    assert ids(recent.between(2, 5, 100)) == [3, 4, 5]


def test_one_activity_bigger_than_the_bound_leaves_nothing_held_but_the_floor_right() -> None:
    recent = RecentActivities(max_count=100, max_bytes=1000)
    recent.extend([activity(1)])
    recent.extend([activity(2, 5000)])
    assert recent.held_bytes <= 1000
    assert recent.floor >= 1
    # Whatever was dropped, a cursor below the floor is refused and one at it is whole.
    assert recent.between(0, 2, 10) is None
    held = ids(recent.between(recent.floor, 2, 10))
    assert held == [i for i in (1, 2) if i > recent.floor]


def test_disabled_holds_nothing_and_its_floor_follows_the_newest() -> None:
    recent = RecentActivities(max_count=0, max_bytes=1 << 20)
    recent.reset(7, [activity(8), activity(9)])
    assert len(recent) == 0
    assert recent.held_bytes == 0
    assert recent.floor == 9
    recent.extend([activity(12), activity(15)])
    assert recent.floor == 15
    assert len(recent) == 0
    assert recent.between(14, 15, 100) is None  # below the floor: read the log
    assert recent.between(15, 15, 100) == []  # nothing past the newest
    recent.extend([])
    assert recent.floor == 15


# -- the invariant, by hypothesis -----------------------------------------------------------

#: One append: how many activities, each with its ID gap (>= 1) and size of its data.
batches = st.lists(
    st.lists(st.tuples(st.integers(1, 4), st.integers(0, 300)), min_size=0, max_size=6),
    min_size=1,
    max_size=25,
)


@settings(max_examples=300, deadline=None)
@given(
    max_count=st.integers(0, 10),
    max_bytes=st.integers(ACTIVITY_OVERHEAD_BYTES, 6 * ACTIVITY_OVERHEAD_BYTES),
    start=st.integers(0, 5),
    steps=batches,
    limit=st.integers(1, 12),
)
def test_between_is_the_log_or_none_exactly_below_the_floor(
    max_count: int, max_bytes: int, start: int, steps: list[list[tuple[int, int]]], limit: int
) -> None:
    recent = RecentActivities(max_count=max_count, max_bytes=max_bytes)
    recent.reset(start)
    log: list[Activity] = []  # everything appended: the reference
    newest = start
    previous_floor = start
    for step in steps:
        batch = []
        for gap, size in step:
            newest += gap
            batch.append(activity(newest, size))
        recent.extend(batch)
        log.extend(batch)

        floor = recent.floor
        assert start <= previous_floor <= floor <= newest  # it only moves up
        previous_floor = floor
        if max_count == 0:
            assert len(recent) == 0
            assert floor == newest
        else:
            assert len(recent) <= max_count
            assert recent.held_bytes <= max_bytes or len(recent) == 1
            assert recent.held_bytes == sum(held_bytes(a) for a in recent.between(floor, newest, 10**6) or [])
        for after in range(start - 1, newest + 2):
            for through in (newest, after + 1, (after + newest) // 2):
                got = recent.between(after, through, limit)
                if after < floor:
                    assert got is None, (after, floor)
                    continue
                expected = [a for a in log if after < a.id <= through][:limit]
                assert got is not None, (after, floor)
                assert ids(got) == ids(expected), (after, through, limit, floor)
                assert all(g is e for g, e in zip(got, expected, strict=True))  # the same objects
