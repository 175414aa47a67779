"""The PostgreSQL doorbell: LISTEN/NOTIFY, for deployments whose only shared engine is the database.

One dedicated connection LISTENs. Its loss is seen at once through asyncpg's termination
listener (the server closed it, or the socket broke), and a `SELECT 1` every `ping_interval`
seconds catches a connection that went silent without closing. Rings go out with `pg_notify` on
a second connection, so that publishing neither waits for nor breaks the listening session.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, NoReturn
from urllib.parse import urlsplit

import asyncpg

from ._network import NetworkDoorbell
from .base import DEFAULT_CHANNEL, POSTGRES_SCHEMES, redact_url

DEFAULT_APPLICATION_NAME = "syncstream-doorbell"
MAX_CHANNEL_BYTES = 63
"""PostgreSQL truncates longer identifiers in LISTEN but rejects them in pg_notify: refuse them upfront."""


class PostgresDoorbell(NetworkDoorbell):
    """A doorbell on a PostgreSQL server, through LISTEN/NOTIFY."""

    def __init__(
        self,
        url: str,
        *,
        channel: str = DEFAULT_CHANNEL,
        application_name: str = DEFAULT_APPLICATION_NAME,
        ping_interval: float = 5.0,
        timeout: float = 5.0,
    ) -> None:
        """`application_name` labels both connections in pg_stat_activity; `timeout` bounds connecting,
        pinging and publishing, so that a black-holed server cannot stall a write for long."""
        if not channel or len(channel.encode()) > MAX_CHANNEL_BYTES:
            raise ValueError(
                f"a PostgreSQL channel name must have 1 to {MAX_CHANNEL_BYTES} bytes: {channel!r}"
            )
        super().__init__(description=f"{redact_url(url)} channel {channel!r}")
        self._dsn = _asyncpg_dsn(url)
        self._channel = channel
        self._application_name = application_name
        self._ping_interval = ping_interval
        self._timeout = timeout
        self._publisher: Any = None  # asyncpg.Connection, which ships no type information
        self._publish_lock = asyncio.Lock()

    async def _connect(self) -> Any:
        """Open a connection, without ever cancelling asyncpg in the middle of its handshake.

        A cancelled asyncpg.connect() leaves a failed future nobody retrieves (asyncio then logs
        "Future exception was never retrieved: unexpected connection_lost() call") and can leak the
        connection (MagicStack/asyncpg#1211). Closing a bell cancels it while it connects, so the
        attempt is left to finish, within `timeout`, and whatever it yields is closed.
        """
        attempt = asyncio.ensure_future(
            asyncpg.connect(
                self._dsn,
                timeout=self._timeout,
                server_settings={"application_name": self._application_name},
            )
        )
        try:
            return await asyncio.shield(attempt)
        except asyncio.CancelledError:
            _abandoned.add(attempt)
            attempt.add_done_callback(_terminate_abandoned)
            raise

    async def _session(self) -> None:
        connection = await self._connect()
        try:
            lost = asyncio.Event()
            connection.add_termination_listener(lambda _connection: lost.set())
            await connection.add_listener(self._channel, self._on_notification)
            self._went_live()
            await self._watch(connection, lost)
        finally:
            connection.terminate()

    async def _watch(self, connection: Any, lost: asyncio.Event) -> NoReturn:
        """Return only by raising, as soon as the connection is known to be lost."""
        while True:
            # asyncio.timeout: 3.11's wait_for can swallow a cancellation (see tailer.py).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._ping_interval):
                    await lost.wait()
            if lost.is_set():
                raise ConnectionError("the LISTEN connection was terminated")
            await connection.fetchval("SELECT 1", timeout=self._timeout)
            self._server_answered()

    def _on_notification(self, _connection: Any, _pid: int, _channel: str, payload: str) -> None:
        self._deliver_payload(payload)

    async def _publish(self, activity_id: int) -> None:
        # asyncpg runs one query at a time per connection: concurrent rings take turns.
        async with self._publish_lock:
            if self._closed:
                return
            connection = self._publisher
            if connection is not None and not connection.is_closed():
                try:
                    await self._notify(connection, activity_id)
                    return
                except Exception:
                    # Most likely a connection that died while idle (say, the server restarted):
                    # a fresh one settles whether the server is really out of reach.
                    connection.terminate()
            self._publisher = None
            connection = await self._connect()
            self._publisher = connection
            await self._notify(connection, activity_id)

    async def _notify(self, connection: Any, activity_id: int) -> None:
        await connection.execute(
            "SELECT pg_notify($1, $2)", self._channel, str(activity_id), timeout=self._timeout
        )

    async def _release(self) -> None:
        async with self._publish_lock:
            if self._publisher is not None:
                self._publisher.terminate()
                self._publisher = None


_abandoned: set[asyncio.Future[Any]] = set()
"""Connection attempts whose bell was closed meanwhile, kept referenced until they finish."""


def _terminate_abandoned(attempt: asyncio.Future[Any]) -> None:
    _abandoned.discard(attempt)
    if not attempt.cancelled() and attempt.exception() is None:
        attempt.result().terminate()


def _asyncpg_dsn(url: str) -> str:
    """asyncpg takes postgresql:// and postgres:// but not SQLAlchemy's postgresql+asyncpg://."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in POSTGRES_SCHEMES:
        raise ValueError(f"not a PostgreSQL URL: {redact_url(url)!r}")
    return parts._replace(scheme="postgresql").geturl()
