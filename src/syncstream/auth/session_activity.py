"""Session lifetimes, and when each session was last used, tracked cheaply.

A session ends ``idle`` seconds after it was last used, and ``max`` seconds after it was
made, whichever comes first. "Last used" lives in the ``sessions`` row, but writing it on
every request would put a write on every read: so each process moves it forward at most
once every :data:`TOUCH_EVERY_SECONDS` per session, and writes the moves of all sessions
touched meanwhile in one transaction, :data:`FLUSH_AFTER_SECONDS` after the first. The
idle lifetime is days long; a minute of slack in it is nothing, a write per request
would be a great deal.

Times are Unix seconds (floats): this runs on every authenticated request, where a
datetime per request would be measurable.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

logger = logging.getLogger("syncstream.auth")

#: A session's last use is moved forward at most this often (per process; a quarter of
#: the idle lifetime if that is shorter).
TOUCH_EVERY_SECONDS = 60.0
#: Touches are written together this long after the first of a batch.
FLUSH_AFTER_SECONDS = 5.0
#: Sessions whose last use this process remembers; past that it forgets (harmless: it
#: falls back to the time read from the row, and touches again).
_MAX_REMEMBERED = 100_000


class SessionTimes(Protocol):
    @property
    def session_id(self) -> str: ...
    @property
    def session_started(self) -> float: ...
    @property
    def session_last_used(self) -> float: ...


class SessionActivity:
    def __init__(
        self,
        *,
        idle_seconds: float,
        max_seconds: float,
        write: Callable[[dict[str, float]], Awaitable[None]],
    ) -> None:
        self.idle_seconds = idle_seconds
        self.max_seconds = max_seconds
        #: A short idle lifetime (a test's, a kiosk's) needs finer touches than the default.
        self.touch_every = min(TOUCH_EVERY_SECONDS, idle_seconds / 4)
        self._write = write
        self._used: dict[str, float] = {}
        self._pending: dict[str, float] = {}
        self._flush: asyncio.Task[None] | None = None

    def last_used(self, session: SessionTimes) -> float:
        return max(session.session_last_used, self._used.get(session.session_id, 0.0))

    def expires_at(self, session: SessionTimes) -> float:
        """When the session ends if it is not used again (Unix seconds)."""
        return min(self.last_used(session) + self.idle_seconds, session.session_started + self.max_seconds)

    def expiry(self, session_id: str, started: float, last_used: float) -> tuple[float, float]:
        """``(last used, expires at)`` of a session read from its row, with what this
        process knows of its use."""
        used = max(last_used, self._used.get(session_id, 0.0))
        return used, min(used + self.idle_seconds, started + self.max_seconds)

    def expired(self, session: SessionTimes, now: float) -> bool:
        return now >= self.expires_at(session)

    def seen(self, session_id: str, last_used: float) -> None:
        """The row says the session was last used at ``last_used`` (another process may
        have moved it)."""
        if last_used > self._used.get(session_id, 0.0):
            self._remember(session_id, last_used)

    def touch(self, session: SessionTimes, now: float) -> None:
        """The session is used now: move its last use forward, if it is due."""
        if now - self.last_used(session) < self.touch_every:
            return
        self._remember(session.session_id, now)
        self._pending[session.session_id] = now
        if self._flush is None:
            self._flush = asyncio.get_running_loop().create_task(
                self._flush_later(), name="syncstream-sessions"
            )

    def forget(self, session_id: str) -> None:
        self._used.pop(session_id, None)
        self._pending.pop(session_id, None)

    def _remember(self, session_id: str, at: float) -> None:
        if len(self._used) >= _MAX_REMEMBERED:
            self._used.clear()
        self._used[session_id] = at

    async def _flush_later(self) -> None:
        try:
            await asyncio.sleep(FLUSH_AFTER_SECONDS)
            await self.flush()
        finally:
            self._flush = None

    async def flush(self) -> None:
        """Write the pending touches now (also at shutdown)."""
        batch, self._pending = self._pending, {}
        if not batch:
            return
        try:
            await self._write(batch)
        except Exception:
            # A database outage loses only these moves of "last used": the sessions stay
            # valid, and are touched again at their next use.
            logger.warning("could not record when %d sessions were last used", len(batch), exc_info=True)
