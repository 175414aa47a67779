"""What the networked doorbells share: the health state, the reconnect loop and forgiving rings.

A transport only says how to run one *session* (connect, subscribe, then listen until the
connection is lost, raising) and how to publish. This class keeps sessions coming back with
jittered exponential backoff, tracks health, tells the handler "go and look" (None) once a
subscription is live again after an outage, and keeps `ring()` from ever raising.
"""

from __future__ import annotations

import abc
import asyncio
import logging
from typing import ClassVar

from ._backoff import reconnect_delay
from .base import Doorbell, RingHandler, call_handler, logger


class NetworkDoorbell(Doorbell):
    """Base for doorbells whose bus lives in another server, shared by several processes."""

    crosses_processes: ClassVar[bool] = True

    def __init__(self, *, description: str) -> None:
        self._description = description
        self._on_ring: RingHandler | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._live = False
        """The subscription is in place: rings published now will be heard."""
        self._publish_ok = True
        """The last publish worked, or the server answered since it failed."""
        self._may_have_missed = False
        """A connection was lost or could not be made, so rings may have gone unheard."""
        self._failures = 0

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._description}>"

    @property
    def healthy(self) -> bool:
        return self._live and self._publish_ok and not self._closed

    async def start(self, on_ring: RingHandler) -> None:
        if self._task is not None or self._closed:
            raise RuntimeError(f"{self!r} was already started or closed")
        self._on_ring = on_ring
        self._task = asyncio.create_task(self._supervise(), name=f"doorbell {self._description}")

    async def ring(self, activity_id: int) -> None:
        if self._closed:
            logger.debug("bus %s: closed, not ringing for activity %d", self._description, activity_id)
            return
        try:
            await self._publish(activity_id)
        except Exception as exc:
            # Warn once per outage rather than once per write; the poll delivers the activity anyway.
            logger.log(
                logging.WARNING if self._publish_ok else logging.DEBUG,
                "bus %s: could not ring for activity %d (%s); the poll will deliver it",
                self._description,
                activity_id,
                describe_error(exc),
            )
            self._publish_ok = False
        else:
            self._publish_ok = True

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._live = False
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.wait({task})
        await self._release()

    # -- for the transports ------------------------------------------------------------------

    @abc.abstractmethod
    async def _session(self) -> None:
        """Connect, subscribe, call `_went_live()`, then listen until the connection is lost.

        Raise (any exception) when the connection is lost or cannot be made, after releasing the
        session's connections; the caller logs it and starts a new session after a backoff.
        """

    @abc.abstractmethod
    async def _publish(self, activity_id: int) -> None:
        """Publish one ring; may raise, `ring()` turns failures into a log line."""

    async def _release(self) -> None:
        """Release what outlives a session (such as a publishing connection) when closing."""

    def _went_live(self) -> None:
        """Record that the subscription is in place, and ask for a look if rings may have been missed."""
        self._live = True
        self._publish_ok = True
        self._failures = 0
        if self._may_have_missed:
            self._may_have_missed = False
            logger.info(
                "bus %s: reconnected; asking for a look at the log for missed rings", self._description
            )
            self._deliver(None)
        else:
            logger.info("bus %s: connected", self._description)

    def _went_down(self, reason: str, *, retry_in: float | None = None) -> None:
        """Record that rings are not being heard (connection lost, or a connection attempt failed)."""
        if self._closed:
            return
        retry = "" if retry_in is None else f" in {retry_in:.2f} s"
        if self._live:
            logger.warning("bus %s: connection lost (%s); reconnecting%s", self._description, reason, retry)
        else:
            logger.warning("bus %s: cannot connect (%s); retrying%s", self._description, reason, retry)
        self._live = False
        self._may_have_missed = True

    def _server_answered(self) -> None:
        """A health ping succeeded: the bus is reachable, so an earlier failed publish no longer counts."""
        self._publish_ok = True

    def _deliver(self, activity_id: int | None) -> None:
        if self._on_ring is not None and not self._closed:
            call_handler(self._on_ring, activity_id)

    def _deliver_payload(self, payload: str | bytes) -> None:
        """Deliver a received message; one that is not an activity ID still means "go and look"."""
        text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else payload
        try:
            activity_id: int | None = int(text)
        except ValueError:
            logger.warning("bus %s: ignoring the unexpected payload %r", self._description, text[:100])
            activity_id = None
        self._deliver(activity_id)

    async def _supervise(self) -> None:
        """Run sessions for as long as the bell is open, backing off between failed ones."""
        while True:
            try:
                await self._session()
            except Exception as exc:
                reason = describe_error(exc)
            else:
                reason = "the session ended"
            delay = reconnect_delay(self._failures)
            self._failures += 1
            self._went_down(reason, retry_in=delay)
            await asyncio.sleep(delay)


def describe_error(exc: BaseException) -> str:
    """A short, one-line account of a transport error for the logs."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
