"""The Redis doorbell: pub/sub on one channel.

(Named redis_bell, not redis, so that nothing that puts this folder on sys.path can shadow the
redis package.)

The subscriber runs on its own client whose connection never retries: redis-py would otherwise
reconnect and resubscribe silently inside `get_message()`, and the bell could not know that rings
were missed in between. A lost connection makes `get_message()` raise at once; a PING after
`ping_interval` quiet seconds, unanswered for another `ping_interval`, catches a connection that
went silent without closing. Rings go out on a separate, ordinary client (one retry, which covers
a pooled connection that died while idle).
"""

from __future__ import annotations

from typing import Any

import redis.asyncio
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from ._network import NetworkDoorbell
from .base import DEFAULT_CHANNEL, redact_url

DEFAULT_CLIENT_NAME = "syncstream-doorbell"


class RedisDoorbell(NetworkDoorbell):
    """A doorbell on a Redis server, through PUBLISH/SUBSCRIBE."""

    def __init__(
        self,
        url: str,
        *,
        channel: str = DEFAULT_CHANNEL,
        client_name: str = DEFAULT_CLIENT_NAME,
        ping_interval: float = 5.0,
        timeout: float = 5.0,
    ) -> None:
        """`client_name` labels the connections in CLIENT LIST (no spaces); `timeout` bounds
        connecting and publishing, so that a black-holed server cannot stall a write for long."""
        if not channel:
            raise ValueError("a Redis channel name must not be empty")
        super().__init__(description=f"{redact_url(url)} channel {channel!r}")
        self._url = url
        self._channel = channel
        self._client_name = client_name
        self._ping_interval = ping_interval
        self._timeout = timeout
        self._publisher: redis.asyncio.Redis | None = None

    async def _session(self) -> None:
        client = redis.asyncio.Redis.from_url(
            self._url,
            client_name=self._client_name,
            socket_connect_timeout=self._timeout,
            socket_timeout=self._timeout,
            # No error is retryable: losses must surface here, not be papered over by redis-py.
            retry=Retry(NoBackoff(), 0, supported_errors=()),
        )
        pubsub = client.pubsub()
        try:
            await pubsub.subscribe(self._channel)
            await self._confirm_subscription(pubsub)
            self._went_live()
            await self._listen(pubsub)
        finally:
            await pubsub.aclose()
            await client.aclose()

    async def _confirm_subscription(self, pubsub: redis.asyncio.client.PubSub) -> None:
        """Wait for Redis to acknowledge SUBSCRIBE: only then are rings sure to be heard."""
        while True:
            message = await pubsub.get_message(timeout=self._timeout)
            if message is None:
                raise TimeoutError(f"Redis did not confirm the subscription within {self._timeout} s")
            if message["type"] == "subscribe":
                return
            self._handle(message)

    async def _listen(self, pubsub: redis.asyncio.client.PubSub) -> None:
        """Deliver rings until the connection is lost, which raises."""
        awaiting_pong = False
        while True:
            message = await pubsub.get_message(timeout=self._ping_interval)
            if message is None:
                if awaiting_pong:
                    raise TimeoutError(f"no answer to PING within {self._ping_interval} s")
                await pubsub.ping()
                awaiting_pong = True
                continue
            # Anything from the server, a ring or the PONG, shows the connection is alive.
            awaiting_pong = False
            self._server_answered()
            self._handle(message)

    def _handle(self, message: dict[str, Any]) -> None:
        if message["type"] == "message":
            self._deliver_payload(message["data"])

    async def _publish(self, activity_id: int) -> None:
        if self._publisher is None:
            self._publisher = redis.asyncio.Redis.from_url(
                self._url,
                client_name=self._client_name,
                socket_connect_timeout=self._timeout,
                socket_timeout=self._timeout,
                retry=Retry(NoBackoff(), 1),
            )
        await self._publisher.publish(self._channel, str(activity_id))

    async def _release(self) -> None:
        if self._publisher is not None:
            publisher, self._publisher = self._publisher, None
            await publisher.aclose()
