"""The database or the bus going away: 503 naming the part, nothing lost when it is back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import orjson
import pytest

from harness import Api, ServerProcess, Stream, User, unique
from services import require_redis
from tcp_proxy import TcpProxy

pytestmark = pytest.mark.asyncio(loop_scope="session")


@dataclass
class Setup:
    server: ServerProcess
    database: TcpProxy
    bus: TcpProxy


@pytest.fixture
async def setup(postgres_database: str) -> AsyncIterator[Setup]:
    database = TcpProxy(postgres_database)
    bus = TcpProxy(await require_redis())
    await database.start()
    await bus.start()
    server = ServerProcess(database_url=database.url, bus_url=bus.url)
    await asyncio.to_thread(server.start)
    yield Setup(server, database, bus)
    await asyncio.to_thread(server.stop)
    await database.close()
    await bus.close()


async def until_health(api: Api, predicate: Callable[[int, dict[str, object]], bool]) -> dict[str, object]:
    """/health is the thing under test; a state has no event to await, so ask until it holds."""
    async with asyncio.timeout(60):
        while True:
            response = await api.request("GET", "/health")
            body = response.json()
            if predicate(response.status_code, body):
                return dict(body)
            await asyncio.sleep(0.1)


def down(proxy: TcpProxy) -> None:
    proxy.accepting = False
    proxy.sever()


async def test_bus_outage_is_reported_and_recovered(setup: Setup) -> None:
    api = Api(setup.server.url)
    down(setup.bus)
    body = await until_health(api, lambda status, b: status == 503 and b["bus"] == "unavailable")
    assert body["database"] == "ok"
    assert body["type"] == "unavailable"
    setup.bus.accepting = True
    await until_health(api, lambda status, b: status == 200)
    await api.aclose()


async def test_database_outage_gives_503_and_streams_resume(setup: Setup) -> None:
    api = Api(setup.server.url)
    owner: User = await api.sign_up()
    client = owner.api()
    org = await client.ok("POST", "/organizations", 201, json={"name": "O", "slug": unique("o")})
    url = f"/organizations/{org['id']}/sync/stream?offset=now&live=sse"
    async with Stream(client.client, url, client.headers()) as stream:
        await stream.until_offset()
        down(setup.database)
        await until_health(api, lambda status, b: status == 503 and b["database"] == "unavailable")
        response = await client.request(
            "POST", f"/organizations/{org['id']}/attachments", json={"name": "during the outage"}
        )
        assert response.status_code == 503, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["type"] == "unavailable"
        assert "retry-after" in response.headers
        setup.database.accepting = True
        await until_health(api, lambda status, b: status == 200)
        created = await client.ok(
            "POST", f"/organizations/{org['id']}/attachments", 201, json={"name": "after the outage"}
        )
        event = await stream.next(wait_seconds=30)
        assert event is not None
        assert orjson.loads(event.data)["entityId"] == created["id"]
    await client.aclose()
    await api.aclose()
