"""Write transactions that record activities and ring the doorbell after commit."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from sqlalchemy.ext.asyncio import AsyncSession

from syncstream.activities import log
from syncstream.activities.model import NewActivity
from syncstream.activities.transports import Doorbell
from syncstream.db.engine import Database


class WriteTransaction:
    """One database transaction; :meth:`record` adds an activity to it."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.last_activity_id: int | None = None

    async def record(self, new: NewActivity) -> int:
        activity_id = await log.append(self.session, new)
        self.last_activity_id = activity_id
        return activity_id


class ActivityWriter:
    """Opens write transactions. After a commit that recorded activities it rings the
    doorbell, so every process (this one included) reads the log and routes them."""

    def __init__(self, database: Database, doorbell: Doorbell) -> None:
        self.database = database
        self.doorbell = doorbell

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[WriteTransaction]:
        async with AsyncSession(self.database.writer, expire_on_commit=False) as session, session.begin():
            tx = WriteTransaction(session)
            yield tx
        if tx.last_activity_id is not None:
            await self.doorbell.ring(tx.last_activity_id)
