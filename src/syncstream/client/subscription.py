"""A followed stream as an async iterator and context manager."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from types import TracebackType
from typing import Generic, TypeVar

from syncstream.client.events import Change, StreamEvent, StreamState
from syncstream.client.follow import Follower
from syncstream.stream.messages import StreamMessage

T = TypeVar("T")


class Subscription(Generic[T]):
    """A followed stream: an async iterator of ``T`` that is also an async context manager.

    ``async for item in subscription`` is enough. ``async with subscription:`` additionally closes the
    connection when the block ends (instead of whenever the garbage collector gets to it) and, when the
    block ends without an exception, saves the cursor of the last item delivered: the block finished
    normally, so the application is done with it. Without the block (or on an exception), an item's
    cursor is saved when the next item is requested, so an item whose processing failed is delivered
    again next time.
    """

    def __init__(self, follower: Follower, items: AsyncGenerator[T, None]) -> None:
        self._follower = follower
        self._items = items

    @property
    def key(self) -> str:
        """The stream's key in the cursor store."""
        return self._follower.key

    @property
    def cursor(self) -> str | None:
        """The ID of the last activity received (or the catch-up cursor): where a reconnection resumes."""
        return self._follower.cursor

    @property
    def state(self) -> StreamState:
        return self._follower.state

    @property
    def follower(self) -> Follower:
        return self._follower

    def reconnect(self) -> None:
        """See :meth:`Follower.reconnect`."""
        self._follower.reconnect()

    def __aiter__(self) -> AsyncIterator[T]:
        return self

    async def __anext__(self) -> T:
        return await self._items.__anext__()

    async def aclose(self) -> None:
        """Close the connection and end the iteration."""
        await self._items.aclose()

    async def __aenter__(self) -> Subscription[T]:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if exc_type is None:
                await self._follower.commit()
        finally:
            await self.aclose()


async def only_changes(events: AsyncGenerator[StreamEvent, None]) -> AsyncGenerator[StreamMessage, None]:
    """The messages of a stream of events (what the typed helpers yield)."""
    async with aclosing(events) as source:
        async for event in source:
            if isinstance(event, Change):
                yield event.message
