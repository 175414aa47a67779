"""Where a followed stream stands, and how that position survives: the cursor, its store, and starting over
after ``must_refetch``.

Split from :mod:`syncstream.client.follow` (which connects and reads) because these rules decide what the
application's cache means, and are the same in SSE and JSON mode.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import TypeVar

from syncstream.client.cursors import CursorStore
from syncstream.client.errors import MustRefetch, RefetchLoopError
from syncstream.stream.messages import Problem

__all__ = ["MustRefetchCallback", "Position", "call_back"]

T = TypeVar("T")

#: Called with the :class:`MustRefetch` error when the server cannot continue from the cursor; it must
#: drop what the application cached from this stream. It may be a plain function or a coroutine function.
MustRefetchCallback = Callable[[MustRefetch], Awaitable[None] | None]


async def call_back(callback: Callable[[T], Awaitable[None] | None] | None, value: T) -> None:
    """Call an application callback that may be a plain function or a coroutine function."""
    if callback is not None:
        result = callback(value)
        if inspect.isawaitable(result):
            await result


class Position:
    """The cursor of one stream (the last activity received), where it is stored, and where to start
    without one.

    Args:
        key: The stream's key in ``store``.
        start: Where to start when no cursor is stored: ``"-1"``, ``"now"`` or an activity ID.
        store: Where the cursor is persisted; ``None`` keeps it in memory.
        on_must_refetch: See :data:`MustRefetchCallback`.
    """

    def __init__(
        self, key: str, start: str, store: CursorStore | None, on_must_refetch: MustRefetchCallback | None
    ) -> None:
        self.key = key
        self.start = start
        self.store = store
        self.on_must_refetch = on_must_refetch
        #: The last change (or offset frame) received.
        self.cursor: str | None = None
        #: Set by a handled ``must_refetch`` until the restarted stream has caught up.
        self.after_reset = False
        self._saved: str | None = None

    @property
    def requested(self) -> str:
        """What the next request resumes from: the cursor, else the starting point."""
        return self.cursor if self.cursor is not None else self.start

    async def load(self) -> None:
        if self.store is not None:
            stored = await self.store.load(self.key)
            if stored is not None:
                self.cursor = self._saved = stored

    async def commit(self) -> None:
        """Persist the cursor of the last item delivered (the application has processed it)."""
        if self.store is not None and self.cursor is not None and self.cursor != self._saved:
            await self.store.save(self.key, self.cursor)
            self._saved = self.cursor

    async def must_refetch(self, problem: Problem, url: str) -> None:
        """Start over from ``-1`` after the application dropped its cache; raise when it cannot help."""
        requested = self.requested
        if self.after_reset or requested in ("-1", "now"):
            raise RefetchLoopError(
                f"the server answered must_refetch to a request from {requested}"
                + (" right after a reset" if self.after_reset else "")
                + f"; resetting again cannot help ({problem})",
                problem=problem,
                url=url,
            )
        error = MustRefetch(
            f"the server cannot continue from cursor {requested}: {problem.detail or problem.title}",
            problem=problem,
            url=url,
            cursor=requested,
        )
        if self.on_must_refetch is None:
            await self._forget()
            raise error
        # The application resets its cache first: if that fails, the stored cursor still says the cache
        # is stale, and the next run asks again instead of reading from -1 over an outdated cache.
        await call_back(self.on_must_refetch, error)
        await self._forget()
        self.after_reset = True

    async def _forget(self) -> None:
        self.cursor = self._saved = None
        self.start = "-1"
        if self.store is not None:
            await self.store.clear(self.key)
