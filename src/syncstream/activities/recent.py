"""The newest activities a process has routed, kept for streams that resume a little behind.

After a deploy or a restart every client reconnects at once with ``Last-Event-ID``, each a
few activities behind. Reading those few from the database costs a connection from the
pool and a hop to the driver's thread per stream, several times what the rest of the open
costs. The tailer has just read the same activities to route them, so it keeps the newest
of them here (and reads them once at start), bounded by count and by bytes, and a resume
whose cursor is within them catches up from memory.

What makes that safe is one invariant: every activity with an ID above :attr:`floor`, up
to the tailer's position, is held, in ID order. A cursor at or above the floor is covered
whole; below it the stream reads the database as before. Pure data, no I/O (the tailer
does that), so the invariant is tested on its own.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Sequence

from syncstream.activities.model import Activity

#: What an activity costs here beyond its JSON text: the object, its fields, the index.
ACTIVITY_OVERHEAD_BYTES = 400


def held_bytes(activity: Activity) -> int:
    """The bytes ``activity`` is counted for against the bound."""
    size = ACTIVITY_OVERHEAD_BYTES
    for text in (activity.data, activity.tx, activity.changed_keys):
        if text is not None:
            size += len(text)
    return size


class RecentActivities:
    """The newest routed activities, at most ``max_count`` of them and about ``max_bytes``.

    Appends come in ID order (the tailer's); when a bound is passed the oldest go, in
    chunks (a list trimmed at its head costs a copy, so not one per append).
    """

    __slots__ = ("_activities", "_bytes", "_ids", "_sizes", "floor", "max_bytes", "max_count")

    def __init__(self, *, max_count: int, max_bytes: int) -> None:
        self.max_count = max_count
        self.max_bytes = max_bytes
        self._ids: list[int] = []
        self._activities: list[Activity] = []
        self._sizes: list[int] = []
        self._bytes = 0
        #: Every activity with an ID above this (up to the newest appended) is held.
        self.floor = 0

    def __len__(self) -> int:
        return len(self._ids)

    @property
    def held_bytes(self) -> int:
        return self._bytes

    def reset(self, floor: int, activities: Sequence[Activity] = ()) -> None:
        """Start again from ``activities``: every activity above ``floor``, ascending."""
        self._ids, self._activities, self._sizes, self._bytes = [], [], [], 0
        self.floor = floor
        self.extend(activities)

    def extend(self, activities: Iterable[Activity]) -> None:
        """Append routed activities (ascending, each above every one held)."""
        if self.max_count <= 0:
            for activity in activities:
                self.floor = activity.id
            return
        ids, held, sizes = self._ids, self._activities, self._sizes
        for activity in activities:
            size = held_bytes(activity)
            ids.append(activity.id)
            held.append(activity)
            sizes.append(size)
            self._bytes += size
        if len(ids) > self.max_count or self._bytes > self.max_bytes:
            self._trim()

    def _trim(self) -> None:
        # Down to three quarters of each bound, so the next trim is many appends away.
        keep_count = self.max_count * 3 // 4
        keep_bytes = self.max_bytes * 3 // 4
        drop = max(0, len(self._ids) - keep_count)
        dropped_bytes = sum(self._sizes[:drop])
        while drop < len(self._ids) and self._bytes - dropped_bytes > keep_bytes:
            dropped_bytes += self._sizes[drop]
            drop += 1
        if drop == 0:
            return
        self.floor = self._ids[drop - 1]
        del self._ids[:drop], self._activities[:drop], self._sizes[:drop]
        self._bytes -= dropped_bytes

    def covers(self, after: int) -> bool:
        """Whether every activity above ``after`` (up to the newest appended) is held."""
        return after >= self.floor

    def between(self, after: int, through: int, limit: int) -> list[Activity] | None:
        """Up to ``limit`` held activities with ``after`` < ID ≤ ``through``, ascending; None
        when some of them may not be held (``after`` is below the floor)."""
        if after < self.floor:
            return None
        ids = self._ids
        start = bisect_right(ids, after)
        stop = min(bisect_right(ids, through, lo=start), start + limit)
        return self._activities[start:stop]
