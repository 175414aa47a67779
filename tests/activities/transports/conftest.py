"""Fixtures for the doorbell tests: the real services, a fresh channel per test, and bell lifecycles.

Each test module says which bus it runs on by defining a `bus_url` fixture.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from services import require_nats, require_postgres, require_redis
from tcp_proxy import TcpProxy

from .support import Bells


@pytest.fixture
def channel() -> str:
    """A channel no other test uses, so that tests cannot hear each other's rings."""
    return f"test-{uuid.uuid4().hex}"


@pytest.fixture
async def bells(bus_url: str, channel: str) -> AsyncIterator[Bells]:
    started = Bells(bus_url, channel)
    yield started
    await started.close()


@pytest.fixture
async def proxy(bus_url: str) -> AsyncIterator[TcpProxy]:
    """A severable relay in front of the test's bus."""
    relay = TcpProxy(bus_url)
    await relay.start()
    yield relay
    await relay.close()


@pytest.fixture
async def postgres_url() -> str:
    return await require_postgres()


@pytest.fixture
async def redis_url() -> str:
    return await require_redis()


@pytest.fixture
async def nats_url() -> str:
    return await require_nats()
