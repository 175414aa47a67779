"""The Redis doorbell against a real Redis server (SYNCSTREAM_TEST_REDIS_URL)."""

from __future__ import annotations

import logging
import uuid

import pytest
import redis.asyncio

from syncstream.activities.transports.redis_bell import RedisDoorbell

from .contract import NetworkDoorbellContract, both_healthy
from .support import Bells

pytestmark = pytest.mark.redis


@pytest.fixture
def bus_url(redis_url: str) -> str:
    return redis_url


class TestRedisDoorbell(NetworkDoorbellContract):
    pass


async def kill_subscribers(url: str, client_name: str) -> int:
    """CLIENT KILL the pub/sub connections named `client_name`, as a server restart or an admin would."""
    admin = redis.asyncio.Redis.from_url(url)
    try:
        clients = await admin.client_list(_type="pubsub")
        ids = [client["id"] for client in clients if client.get("name") == client_name]
        for client_id in ids:
            await admin.client_kill_filter(_id=client_id)
        return len(ids)
    finally:
        await admin.aclose()


async def test_resubscribes_after_the_server_kills_the_subscriber(
    bells: Bells, redis_url: str, channel: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="syncstream.bus")
    name = f"syncstream-test-{uuid.uuid4().hex}"
    bell, heard = await bells.start(RedisDoorbell(redis_url, channel=channel, client_name=name))
    other, heard_by_other = await bells.start()
    await both_healthy(bell, other)

    assert await kill_subscribers(redis_url, name) == 1

    await heard.wait_for_unknown()
    assert bell.healthy
    assert any("connection lost" in record.getMessage() for record in caplog.records)
    await other.ring(11)
    await heard.wait_for_ids([11])
    await bell.ring(12)
    await heard_by_other.wait_for_ids([12])
    assert None not in heard_by_other.rings  # only the bell that lost its connection is asked to look
