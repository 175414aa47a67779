"""A live collection: entity ID → entity, kept current from a stream, like Electric's ``Shape``.

::

    async with client.org_collection("acme", entity_types=["attachment"]) as attachments:
        await attachments.ready()                       # history read: the collection is complete
        attachments.on_change(lambda change: print(change.action, change.entity_id))
        print(len(attachments), attachments.get("at_9f2c"))

The collection follows the stream from ``-1`` in a background task: every ``create``/``update`` puts the
message's ``data`` (the entity right after the change) under its entity ID, every ``delete`` removes it.
When the server answers ``must_refetch``, the collection empties itself, tells its ``on_reset`` callbacks,
and reads the stream again from ``-1``, so it never holds entities from a history the server no longer
vouches for. It keeps no cursor between runs: its content lives in memory, so a new collection always
starts from the whole history.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal

from syncstream.client.errors import MustRefetch
from syncstream.client.events import CaughtUp, Change, StreamEvent
from syncstream.client.position import call_back
from syncstream.client.subscription import Subscription
from syncstream.stream.messages import StreamMessage

__all__ = ["ChangeCallback", "CollectionChange", "LiveCollection", "ResetCallback"]

logger = logging.getLogger("syncstream.client")


@dataclass(frozen=True, slots=True)
class CollectionChange:
    """One change applied to a :class:`LiveCollection`.

    Attributes:
        action: ``create``, ``update`` or ``delete``.
        entity_id: The key that changed.
        value: The entity now (``None`` after a delete).
        previous: The entity before (``None`` if the collection did not hold it).
        message: The stream message that caused the change.
        own: The change is the echo of a write made by the same client (its ``tx.sourceId``).
    """

    action: Literal["create", "update", "delete"]
    entity_id: str
    value: dict[str, Any] | None
    previous: dict[str, Any] | None
    message: StreamMessage
    own: bool


#: Called after each change is applied (plain function or coroutine function).
ChangeCallback = Callable[[CollectionChange], Awaitable[None] | None]
#: Called after a ``must_refetch`` emptied the collection, before it is read again from ``-1``.
ResetCallback = Callable[[MustRefetch], Awaitable[None] | None]


class LiveCollection(Mapping[str, dict[str, Any]]):
    """entity ID → entity dict, kept current from one stream; a read-only :class:`Mapping`.

    Make one with :meth:`SyncClient.org_collection` or :meth:`SyncClient.pages_collection`, then use it as
    ``async with`` (or :meth:`start` and :meth:`aclose`). Callbacks run in the event loop, in the order the
    changes arrive; an exception in a callback is logged and does not stop the collection. An error that
    ends the stream for good (``Unauthorized``, ``Forbidden``, …) is kept in :attr:`error` and raised by
    :meth:`ready` and :meth:`wait_for`.

    Args:
        subscribe: Opens the stream's events, given the collection's ``must_refetch`` handler.
        is_own: Tells whether a message is the echo of this client's own write.
    """

    def __init__(
        self,
        subscribe: Callable[[Callable[[MustRefetch], Awaitable[None]]], Subscription[StreamEvent]],
        *,
        is_own: Callable[[StreamMessage], bool] | None = None,
    ) -> None:
        self._subscribe = subscribe
        self._is_own = is_own or (lambda _message: False)
        self._entities: dict[str, dict[str, Any]] = {}
        self._change_callbacks: list[ChangeCallback] = []
        self._reset_callbacks: list[ResetCallback] = []
        self._updated = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self._subscription: Subscription[StreamEvent] | None = None
        #: True once the history has been read (the first ``offset`` frame, and after each reset).
        self.is_ready = False
        #: The error that ended the stream, if one did.
        self.error: BaseException | None = None

    # -- the mapping --------------------------------------------------------------------------------------

    def __getitem__(self, entity_id: str) -> dict[str, Any]:
        return self._entities[entity_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entities)

    def __len__(self) -> int:
        return len(self._entities)

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """A copy of the collection as it stands (entities are copied one level deep)."""
        return {key: dict(value) for key, value in self._entities.items()}

    @property
    def cursor(self) -> str | None:
        """The ID of the last activity applied."""
        return self._subscription.cursor if self._subscription is not None else None

    # -- callbacks ----------------------------------------------------------------------------------------

    def on_change(self, callback: ChangeCallback) -> Callable[[], None]:
        """Call ``callback`` after every change; returns a function that unregisters it."""
        self._change_callbacks.append(callback)
        return lambda: self._change_callbacks.remove(callback)

    def on_reset(self, callback: ResetCallback) -> Callable[[], None]:
        """Call ``callback`` when ``must_refetch`` emptied the collection; returns an unregister function."""
        self._reset_callbacks.append(callback)
        return lambda: self._reset_callbacks.remove(callback)

    # -- life ---------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start following the stream in a background task (``async with`` does this)."""
        if self._task is not None:
            raise RuntimeError("a collection is started once")
        self._subscription = self._subscribe(self._refetch)
        self._task = asyncio.create_task(self._follow(self._subscription), name="syncstream-collection")

    async def aclose(self) -> None:
        """Stop following (the content stays readable, no longer updated)."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                # Ours, unless the caller itself is being cancelled: then it must go on.
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise
            await self._notify()  # waiters see that it stopped

    async def __aenter__(self) -> LiveCollection:
        self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def ready(self) -> LiveCollection:
        """Wait until the history has been read: from then on the collection is complete and live."""
        await self.wait_for(lambda collection: collection.is_ready)
        return self

    async def wait_for(self, predicate: Callable[[LiveCollection], bool]) -> LiveCollection:
        """Wait until ``predicate(collection)`` holds (checked now and after every change); raises the
        stream's fatal error if it ends first. Bound it with ``asyncio.timeout``."""
        async with self._updated:
            while not predicate(self):
                if self.error is not None:
                    raise self.error
                if self._task is None or self._task.done():
                    raise RuntimeError("the collection is not running: use it as `async with` or start()")
                await self._updated.wait()
        return self

    # -- internals ----------------------------------------------------------------------------------------

    async def _follow(self, subscription: Subscription[StreamEvent]) -> None:
        try:
            async with subscription:
                async for event in subscription:
                    if isinstance(event, Change):
                        await self._apply(event.message)
                    elif isinstance(event, CaughtUp) and not self.is_ready:
                        self.is_ready = True
                        await self._notify()
        except Exception as exc:  # SyncStreamError, or a bug: either way the collection stops updating
            self.error = exc
            await self._notify()

    async def _apply(self, message: StreamMessage) -> None:
        entity_id = message.entity_id
        previous = self._entities.get(entity_id)
        value: dict[str, Any] | None
        if message.action == "delete":
            self._entities.pop(entity_id, None)
            value = None
        else:
            value = dict(message.data or {})
            self._entities[entity_id] = value
        change = CollectionChange(
            message.action, entity_id, value, previous, message, own=self._is_own(message)
        )
        for callback in list(self._change_callbacks):
            await self._run(callback, change)
        await self._notify()

    async def _refetch(self, error: MustRefetch) -> None:
        self._entities.clear()
        self.is_ready = False
        for callback in list(self._reset_callbacks):
            await self._run(callback, error)
        await self._notify()

    @staticmethod
    async def _run(callback: Callable[[Any], Awaitable[None] | None], value: Any) -> None:
        try:
            await call_back(callback, value)
        except Exception:
            logger.exception("a live collection callback failed")

    async def _notify(self) -> None:
        async with self._updated:
            self._updated.notify_all()
