"""The in-process activity bus: named events, ``on / once / off / on_any / emit``.

Routing subscribers is synchronous work (it only appends to outboxes), so handlers are
called inline, in registration order, in the order activities are emitted. A handler
that raises is logged and skipped: one broken listener must not stop the others, and
the write that produced the activity committed long before.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import TypeAlias

from syncstream.activities.model import Activity

log = logging.getLogger("syncstream.bus")

Handler: TypeAlias = Callable[[Activity], object]


class UnknownEventError(ValueError):
    pass


class ActivityBus:
    def __init__(self, known_events: Iterable[str] = ()) -> None:
        self._known = set(known_events)
        self._handlers: dict[str, list[Handler]] = {}
        self._any: list[Handler] = []
        self._tasks: set[asyncio.Task[None]] = set()

    def declare(self, events: Iterable[str]) -> None:
        """Make ``events`` known (the events of a declared entity type)."""
        self._known.update(events)

    def knows(self, event: str) -> bool:
        return event in self._known

    def _check(self, event: str) -> None:
        if event not in self._known:
            raise UnknownEventError(f"unknown event {event!r}; known: {', '.join(sorted(self._known))}")

    def on(self, event: str, handler: Handler) -> Callable[[], None]:
        """Call ``handler`` for every ``event``; returns a function that removes it."""
        self._check(event)
        self._handlers.setdefault(event, []).append(handler)
        return lambda: self.off(event, handler)

    def once(self, event: str, handler: Handler) -> Callable[[], None]:
        def wrapper(activity: Activity) -> object:
            self.off(event, wrapper)
            return handler(activity)

        return self.on(event, wrapper)

    def off(self, event: str, handler: Handler) -> None:
        handlers = self._handlers.get(event)
        if handlers and handler in handlers:
            handlers.remove(handler)
            if not handlers:
                del self._handlers[event]

    def on_any(self, handler: Handler) -> Callable[[], None]:
        self._any.append(handler)
        return lambda: self._any.remove(handler) if handler in self._any else None

    def listener_count(self, event: str | None = None) -> int:
        if event is None:
            return sum(map(len, self._handlers.values())) + len(self._any)
        return len(self._handlers.get(event, ()))

    def emit(self, event: str, activity: Activity) -> None:
        self._check(event)
        # Copy: a ``once`` handler removes itself while we iterate.
        for handler in (*self._handlers.get(event, ()), *self._any):
            self._call(event, handler, activity)

    def _call(self, event: str, handler: Handler, activity: Activity) -> None:
        try:
            result = handler(activity)
        except Exception:
            log.exception("bus handler %r failed on %s #%s", handler, event, activity.id)
            return
        # Only an awaitable is awaited: a router may return what it likes (a count, say).
        if result is not None and inspect.isawaitable(result):
            task = asyncio.ensure_future(self._guard(event, handler, activity, result))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _guard(
        self, event: str, handler: Handler, activity: Activity, result: Awaitable[object]
    ) -> None:
        try:
            await result
        except Exception:
            log.exception("bus handler %r failed on %s #%s", handler, event, activity.id)
