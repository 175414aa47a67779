"""Each server process follows the activity log from its own position.

The doorbell only says "there is more"; the log is the truth. So a lost notification,
a bus restart or a network blip costs at most one poll interval of latency, never an
activity, and every process emits the same activities in the same (ID) order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection

from syncstream.activities import log
from syncstream.activities.bus import ActivityBus
from syncstream.activities.model import Activity
from syncstream.activities.recent import RecentActivities
from syncstream.activities.transports import Doorbell
from syncstream.db.engine import Database

logger = logging.getLogger("syncstream.tailer")

_BACKOFF_MAX = 5.0
#: Rows (and bytes, without a bound of the tailer's own) of one read on the event loop's thread.
INLINE_BATCH = 64
INLINE_MAX_BYTES = 1024 * 1024


class LogTailer:
    def __init__(
        self,
        database: Database,
        bus: ActivityBus,
        doorbell: Doorbell,
        *,
        poll_seconds: float = 1.0,
        batch_size: int = 1000,
        max_bytes: int | None = None,
        recent_count: int = 0,
        recent_bytes: int = 0,
    ) -> None:
        self.database = database
        self.bus = bus
        self.doorbell = doorbell
        self.poll_seconds = poll_seconds
        self.batch_size = batch_size
        #: Each read also stops at this many bytes of activities (one always): a burst of
        #: big writes is routed in pieces, and the outboxes filled in one loop iteration
        #: (written as one chunk each) stay as small.
        self.max_bytes = max_bytes
        #: Highest activity ID emitted on the bus.
        self.position = 0
        #: The newest activities routed (every one above its floor, up to ``position``):
        #: what a stream resuming a little behind catches up from (see activities/recent.py).
        self.recent = RecentActivities(max_count=recent_count, max_bytes=recent_bytes)
        self.healthy = True
        self._wake = asyncio.Event()
        #: Set, and replaced by a new one, each time the position advances (and when the
        #: tailer stops or fails): what :meth:`wait_for` and :meth:`routed` await, one
        #: wake-up each, no lock to queue on.
        self._moved = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        try:
            async with self.database.reader.connect() as conn:
                await self._load_recent(conn)
        except (SQLAlchemyError, OSError):
            # Start anyway; the loop retries and /health reports the database.
            self.healthy = False
            logger.exception("could not read the log position at start")
        await self.doorbell.start(self._on_ring)
        self._task = asyncio.create_task(self._run(), name="syncstream-log-tailer")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
            self._release()
        await self.doorbell.close()

    async def _load_recent(self, conn: AsyncConnection) -> None:
        """Start at the newest activity, holding the newest ``recent_count`` of them (or,
        past the byte bound, the newest half of them, and so on): the streams that
        reconnect after a restart are a few activities behind it."""
        newest = await log.newest_id(conn)
        recent = self.recent
        floor = newest
        held: list[Activity] = []
        count = recent.max_count if newest > 0 else 0
        while count > 0:
            below = await log.id_before_newest(conn, count)
            page = await log.read_after(conn, below, limit=count, max_bytes=recent.max_bytes)
            if not page.cut:
                held = [a for a in page if a.id <= newest]
                if held and held[-1].id == newest:
                    floor = below
                else:  # the log moved between the reads: start empty at the newest
                    held = []
                break
            count //= 2  # more than the byte bound: the newest half of them, and so on
        self.position = newest
        recent.reset(floor, held)

    def _on_ring(self, activity_id: int | None) -> None:
        if activity_id is None or activity_id > self.position:
            self._wake.set()

    def poke(self) -> None:
        """Read the log now (e.g. right after this process committed)."""
        self._wake.set()

    async def wait_for(self, activity_id: int) -> None:
        """Return once activity ``activity_id`` (or a later one) has been emitted."""
        while self.position < activity_id:
            await self._moved.wait()

    async def routed(self, activity_id: int) -> None:
        """Return once this process has routed ``activity_id``, read at once rather than
        when the doorbell comes round; at most about two poll intervals, not at all while the
        tailer is stopped or cannot read the log (the write stands either way)."""
        if self.position >= activity_id or self._task is None:
            return
        self.poke()
        # No timer per write: every cycle of the tailer's loop (at least one per poll
        # interval) wakes the waiters, and each gives up once its interval has passed.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.poll_seconds
        while self.position < activity_id and self.healthy and self._task is not None:
            if loop.time() >= deadline:
                return
            await self._moved.wait()

    def _release(self) -> None:
        """Wake everything waiting on the position (each checks it again)."""
        moved, self._moved = self._moved, asyncio.Event()
        moved.set()

    async def _run(self) -> None:
        backoff = 0.1
        while True:
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can lose a
            # cancellation that lands as its inner wait completes, and stop() then hangs.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll_seconds):
                    await self._wake.wait()
            self._wake.clear()
            try:
                await self._drain()
            except (SQLAlchemyError, OSError) as exc:
                if self.healthy:
                    logger.warning("reading the activity log failed: %s", exc)
                self.healthy = False
                self._release()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _BACKOFF_MAX)
                self._wake.set()
                continue
            if not self.healthy:
                logger.info("activity log readable again at position %s", self.position)
            self.healthy = True
            backoff = 0.1
            self._release()

    async def _read(self) -> tuple[log.LogPage, int]:
        """The next activities after ``position``, and the row limit the read had."""
        # The usual read finds a few new rows: on SQLite it is made on this thread
        # (db/inline_read.py), which takes less than handing it to the driver's thread
        # and back, and delivers sooner; a longer backlog is read on in such steps.
        inline = self.database.inline
        if inline is not None:
            batch = log.read_after_inline(
                inline, self.position, limit=INLINE_BATCH, max_bytes=self.max_bytes or INLINE_MAX_BYTES
            )
            if batch is not None:
                return batch, INLINE_BATCH
        async with self.database.reader.connect() as conn:
            batch = await log.read_after(conn, self.position, limit=self.batch_size, max_bytes=self.max_bytes)
        return batch, self.batch_size

    async def _drain(self) -> None:
        while True:
            batch, limit = await self._read()
            bus = self.bus
            for activity in batch:
                self.position = activity.id
                # A type this process does not know (declared by another application on
                # the same database, or by a newer release mid-deploy) has no listener here.
                if bus.knows(activity.type):
                    bus.emit(activity.type, activity)
            if batch:
                self.recent.extend(batch)
                self._release()
            if len(batch) < limit and not batch.cut:
                return
