"""The NATS doorbell: core NATS publish/subscribe on the subject `syncstream.<channel>`.

(Named nats_bell, not nats, so that nothing that puts this folder on sys.path can shadow the
nats package.)

nats-py keeps the connection up by itself, so this bell mostly listens to it: the
disconnected/reconnected callbacks drive health and the "go and look" after a reconnect (nats-py
has replayed the subscription and flushed it by then), its PINGs every `ping_interval` seconds
catch a connection that went silent, and a reconnect-to-server handler gives its retries jittered
exponential backoff. It retries forever, so the client only ends up closed on a fatal protocol
error (say, an authorization violation); the shared session loop then starts a fresh client.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from typing import Any

from nats.aio.client import Client
from nats.aio.client import Server as NatsServer
from nats.aio.msg import Msg

from ._backoff import reconnect_delay
from ._network import NetworkDoorbell, describe_error
from .base import DEFAULT_CHANNEL, logger, redact_url

DEFAULT_CLIENT_NAME = "syncstream-doorbell"
SUBJECT_PREFIX = "syncstream."
_VALID_CHANNEL = re.compile(r"[^\s.*>]+")
"""One subject token: no whitespace, no wildcard and no dot, so that the subject is exactly ours."""


class NatsDoorbell(NetworkDoorbell):
    """A doorbell on a NATS server, through core (not JetStream) publish/subscribe."""

    def __init__(
        self,
        url: str,
        *,
        channel: str = DEFAULT_CHANNEL,
        client_name: str = DEFAULT_CLIENT_NAME,
        ping_interval: int = 5,
        timeout: int = 5,
    ) -> None:
        """`client_name` labels the connection in the server's monitoring; `timeout` bounds
        connecting and confirming the subscription."""
        if not _VALID_CHANNEL.fullmatch(channel):
            raise ValueError(
                f"a NATS channel must be one subject token (no spaces, '.', '*' or '>'): {channel!r}"
            )
        super().__init__(description=f"{redact_url(url)} subject {SUBJECT_PREFIX}{channel}")
        self._url = url
        self._subject = SUBJECT_PREFIX + channel
        self._client_name = client_name
        self._ping_interval = ping_interval
        self._timeout = timeout
        self._client: Client | None = None

    async def _session(self) -> None:
        client = Client()
        self._client = client
        closed = asyncio.Event()

        async def on_closed() -> None:
            closed.set()

        try:
            # Returns once connected; until then nats-py retries every reconnect_time_wait second,
            # reporting each failure to error_cb.
            await client.connect(
                servers=[self._url],
                name=self._client_name,
                allow_reconnect=True,
                max_reconnect_attempts=-1,
                reconnect_time_wait=1,
                connect_timeout=self._timeout,
                ping_interval=self._ping_interval,
                max_outstanding_pings=2,
                error_cb=self._on_error,
                disconnected_cb=self._on_disconnected,
                reconnected_cb=self._on_reconnected,
                closed_cb=on_closed,
                reconnect_to_server_handler=_backoff_handler,
            )
            await client.subscribe(self._subject, cb=self._on_message)
            await client.flush(timeout=self._timeout)  # the server has the SUB once the PONG is back
            self._went_live()
            await closed.wait()
            raise ConnectionError(f"the NATS client closed ({client.last_error!r})")
        finally:
            self._client = None
            if not client.is_closed:
                # nats-py calls the callbacks again while closing; they ignore a closed bell.
                with contextlib.suppress(Exception):
                    await client.close()

    async def _on_message(self, message: Msg) -> None:
        self._deliver_payload(message.data)

    async def _on_error(self, error: Exception) -> None:
        if self._closed:
            return
        if self._live:
            logger.warning("bus %s: %s", self._description, describe_error(error))
        else:
            self._went_down(describe_error(error))

    async def _on_disconnected(self) -> None:
        self._went_down("disconnected")

    async def _on_reconnected(self) -> None:
        if not self._closed:
            self._went_live()

    async def _publish(self, activity_id: int) -> None:
        client = self._client
        # While reconnecting nats-py buffers the message and sends it once back, which still
        # helps the processes that stayed connected; before the first connection it cannot.
        if client is None or not (client.is_connected or client.is_reconnecting):
            raise ConnectionError("not connected to NATS")
        await client.publish(self._subject, str(activity_id).encode())


def _backoff_handler(servers: list[NatsServer], _info: dict[str, Any]) -> tuple[NatsServer | None, float]:
    """Tell nats-py to retry the next server after a jittered exponential delay."""
    failures = min((server.reconnects for server in servers), default=0)
    return None, reconnect_delay(failures)
