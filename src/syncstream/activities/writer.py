"""Write transactions that record activities and ring the doorbell after commit.

A write transaction is a plain function of a :class:`WriteTransaction`: no awaits
inside. On SQLite it runs on the writer thread (one hop for the whole transaction, and
group commit with the others queued; see ``db/serial_writer.py``); on PostgreSQL it runs
through SQLAlchemy's ``run_sync`` on an async session. Routes therefore look the same on
both, and nothing inside a transaction can wait on the network by accident.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from syncstream.activities import log
from syncstream.activities.model import NewActivity
from syncstream.activities.transports import Doorbell
from syncstream.db.engine import Database

T = TypeVar("T")

#: ``session.info`` key under which activities recorded outside :meth:`WriteTransaction.record`
#: (the ORM session events of declared models) wait for their commit: a list of
#: ``(NewActivity, activity ID, hook)``.
RECORDED_KEY = "syncstream.recorded"

#: Told, in this process and right after commit, which activities a transaction wrote:
#: caches of what those activities change are dropped before the response goes out.
CommitObserver = Callable[[list[NewActivity]], None]


class WriteTransaction:
    """One database transaction; :meth:`record` adds an activity to it."""

    __slots__ = ("last_activity_id", "recorded", "session")

    def __init__(self, session: Session) -> None:
        self.session = session
        self.last_activity_id: int | None = None
        self.recorded: list[NewActivity] = []

    def record(self, new: NewActivity) -> int:
        activity_id = log.append(self.session, new)
        self.last_activity_id = activity_id
        self.recorded.append(new)
        return activity_id


class ActivityWriter:
    """Runs write transactions. After a commit that recorded activities it tells the
    commit observers and rings the doorbell, so every process (this one included) reads
    the log and routes them."""

    def __init__(self, database: Database, doorbell: Doorbell) -> None:
        self.database = database
        self.doorbell = doorbell
        self.observers: list[CommitObserver] = []
        #: Awaited after each commit, before the write answers: this process's tailer
        #: routing it (``LogTailer.routed``), so that a stream opened once the write has
        #: answered finds it in its catch-up, which stops where the tailer is.
        self.routed: Callable[[int], Awaitable[None]] | None = None
        self._rung = 0

    async def run(self, work: Callable[[WriteTransaction], T]) -> T:
        """Run ``work`` in a transaction and return its result once committed."""
        tx: WriteTransaction | None = None

        def in_transaction(session: Session) -> T:
            nonlocal tx
            tx = WriteTransaction(session)
            result = work(tx)
            session.flush()  # what commit would flush, now: declared models record here
            for new, activity_id, _hook in session.info.pop(RECORDED_KEY, ()):
                # Taken over from the session events: rung once, below, after the commit.
                tx.recorded.append(new)
                tx.last_activity_id = max(tx.last_activity_id or 0, activity_id)
            return result

        serial = self.database.serial
        if serial is not None:
            result = await serial.run(in_transaction)
        else:
            async with AsyncSession(self.database.writer, expire_on_commit=False) as session, session.begin():
                result = await session.run_sync(in_transaction)
        if tx is not None and tx.last_activity_id is not None:
            await self.committed(tx.recorded, tx.last_activity_id)
        return result

    async def committed(self, recorded: list[NewActivity], activity_id: int | None) -> None:
        """After the commit of ``recorded`` (newest ID ``activity_id``), made here or in an
        application's own session: tell the observers, ring the doorbell."""
        for observer in self.observers:
            observer(recorded)
        # Concurrent transactions commit in batches: one ring for the newest is enough.
        if activity_id is not None and activity_id > self._rung:
            self._rung = activity_id
            await self.doorbell.ring(activity_id)
        if activity_id is not None and self.routed is not None:
            await self.routed(activity_id)
