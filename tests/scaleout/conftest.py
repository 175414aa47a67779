"""Several server processes on one PostgreSQL database, with a bus between them.

Every bus and the database are reached through a :class:`TcpProxy`, so a test can cut
them (a restart or a network blip, as the servers see it) without disturbing the real
services.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from databases import create_postgres_database, drop_postgres_database
from harness import ServerProcess
from services import require_nats, require_redis
from tcp_proxy import TcpProxy

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture
async def postgres_database() -> AsyncIterator[str]:
    url = await create_postgres_database()
    yield url
    await drop_postgres_database(url)


async def bus_upstream(kind: str, database_url: str) -> str:
    if kind == "postgresql":
        return database_url
    if kind == "redis":
        return await require_redis()
    return await require_nats()


@dataclass
class Cluster:
    database_url: str
    bus: TcpProxy
    servers: list[ServerProcess] = field(default_factory=list)

    async def start(self, count: int, **env: str) -> None:
        # In a thread: the proxies live on this event loop and must keep relaying meanwhile.
        for _ in range(count):
            server = ServerProcess(database_url=self.database_url, bus_url=self.bus.url, env=env)
            self.servers.append(await asyncio.to_thread(server.start))

    async def stop(self) -> None:
        for server in self.servers:
            await asyncio.to_thread(server.stop)


@pytest.fixture(params=["postgresql", "redis", "nats"])
async def cluster(request: pytest.FixtureRequest, postgres_database: str) -> AsyncIterator[Cluster]:
    proxy = TcpProxy(await bus_upstream(request.param, postgres_database))
    await proxy.start()
    # A slow poll: the test must show that the doorbell, not the poll, delivers.
    cluster = Cluster(postgres_database, proxy)
    await cluster.start(3, SYNCSTREAM_POLL_SECONDS="5")
    yield cluster
    await cluster.stop()
    await proxy.close()
