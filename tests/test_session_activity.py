"""Session lifetimes and the cheap tracking of last use, on their own (times are passed in)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest

from syncstream.auth import session_activity
from syncstream.auth.session_activity import TOUCH_EVERY_SECONDS, SessionActivity

DAY = 86400.0


@dataclass
class Row:
    session_id: str
    session_started: float
    session_last_used: float


class Recorder:
    def __init__(self, fail: bool = False) -> None:
        self.batches: list[dict[str, float]] = []
        self.fail = fail
        self.written = asyncio.Event()

    async def __call__(self, used: dict[str, float]) -> None:
        self.batches.append(dict(used))
        self.written.set()
        if self.fail:
            raise OSError("the database is down")


def tracker(write: Recorder, idle: float = 14 * DAY, max_: float = 90 * DAY) -> SessionActivity:
    return SessionActivity(idle_seconds=idle, max_seconds=max_, write=write)


async def test_a_session_ends_idle_or_at_its_absolute_lifetime_whichever_is_first() -> None:
    sessions = tracker(Recorder())
    fresh = Row("s1", session_started=0.0, session_last_used=0.0)
    assert sessions.expires_at(fresh) == 14 * DAY
    assert not sessions.expired(fresh, 14 * DAY - 1)
    assert sessions.expired(fresh, 14 * DAY)
    busy = Row("s2", session_started=0.0, session_last_used=89 * DAY)
    assert sessions.expires_at(busy) == 90 * DAY  # used yesterday, but 90 days old tomorrow


async def test_use_moves_the_idle_end_but_is_written_at_most_once_a_minute(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(session_activity, "FLUSH_AFTER_SECONDS", 0.0)
    write = Recorder()
    sessions = tracker(write)
    row = Row("s1", session_started=0.0, session_last_used=0.0)
    sessions.touch(row, 30.0)  # under a minute since the last use: nothing to do
    assert sessions.last_used(row) == 0.0
    sessions.touch(row, 100.0)
    sessions.touch(row, 150.0)  # within a minute of the last touch
    assert sessions.last_used(row) == 100.0
    assert sessions.expires_at(row) == 100.0 + 14 * DAY
    await asyncio.wait_for(write.written.wait(), 10)
    assert write.batches == [{"s1": 100.0}]
    sessions.touch(row, 100.0 + TOUCH_EVERY_SECONDS)
    assert sessions.last_used(row) == 100.0 + TOUCH_EVERY_SECONDS


async def test_touches_of_many_sessions_are_written_together(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(session_activity, "FLUSH_AFTER_SECONDS", 0.0)
    write = Recorder()
    sessions = tracker(write)
    for n in range(50):
        sessions.touch(Row(f"s{n}", 0.0, 0.0), 1000.0 + n)
    await asyncio.wait_for(write.written.wait(), 10)
    assert write.batches == [{f"s{n}": 1000.0 + n for n in range(50)}]


async def test_a_failed_write_loses_only_the_touches() -> None:
    write = Recorder(fail=True)
    sessions = tracker(write)
    row = Row("s1", 0.0, 0.0)
    sessions.touch(row, 500.0)
    await sessions.flush()  # logged, not raised
    assert write.batches == [{"s1": 500.0}]
    assert not sessions.expired(row, 600.0)


async def test_what_another_process_wrote_counts_and_an_ended_session_is_forgotten() -> None:
    sessions = tracker(Recorder())
    row = Row("s1", 0.0, 0.0)
    sessions.seen("s1", 5 * DAY)
    assert sessions.expires_at(row) == 19 * DAY
    sessions.seen("s1", 1 * DAY)  # an older time never moves it back
    assert sessions.expires_at(row) == 19 * DAY
    sessions.forget("s1")
    assert sessions.expires_at(row) == 14 * DAY


async def test_a_short_idle_lifetime_is_touched_often_enough_to_matter() -> None:
    sessions = tracker(Recorder(), idle=4.0)
    row = Row("s1", 0.0, 0.0)
    sessions.touch(row, 1.0)
    assert sessions.expires_at(row) == 5.0
