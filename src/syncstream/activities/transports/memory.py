"""The in-process doorbell, for a single server process and for tests.

Bells on the same channel in one process hear each other, which is all a single process needs;
there is nothing to connect to, so it is always healthy and delivers synchronously inside `ring()`.
"""

from __future__ import annotations

from typing import ClassVar

from .base import DEFAULT_CHANNEL, Doorbell, RingHandler, call_handler

_listening: dict[str, dict[MemoryDoorbell, RingHandler]] = {}
"""Started bells per channel, with their handlers (a dict keeps start order for delivery)."""


class MemoryDoorbell(Doorbell):
    """A doorbell that reaches only the bells of this process."""

    crosses_processes: ClassVar[bool] = False

    def __init__(self, *, channel: str = DEFAULT_CHANNEL) -> None:
        self._channel = channel
        self._started = False
        self._closed = False

    def __repr__(self) -> str:
        return f"<MemoryDoorbell channel={self._channel!r}>"

    @property
    def healthy(self) -> bool:
        return True

    async def start(self, on_ring: RingHandler) -> None:
        if self._started or self._closed:
            raise RuntimeError(f"{self!r} was already started or closed")
        self._started = True
        _listening.setdefault(self._channel, {})[self] = on_ring

    async def ring(self, activity_id: int) -> None:
        # Copy: a handler may start or close a bell while we iterate.
        for on_ring in list(_listening.get(self._channel, {}).values()):
            call_handler(on_ring, activity_id)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        listeners = _listening.get(self._channel, {})
        listeners.pop(self, None)
        if not listeners:
            _listening.pop(self._channel, None)
