"""503 ``unavailable`` with ``Retry-After`` while the database is out of reach, never a 500.

Needs PostgreSQL: a server reaches a throw-away database through a TCP relay that the
test cuts, as a network failure would. Skipped when PostgreSQL is not there.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest_asyncio

from databases import create_postgres_database, drop_postgres_database
from harness import ServerProcess, unique
from tcp_proxy import TcpProxy

from .support import PASSWORD, assert_problem


@pytest_asyncio.fixture(loop_scope="session")
async def relay() -> AsyncIterator[TcpProxy]:
    url = await create_postgres_database()
    proxy = TcpProxy(url)
    await proxy.start()
    yield proxy
    await proxy.close()
    await drop_postgres_database(url)


@pytest_asyncio.fixture(loop_scope="session")
async def server_behind(relay: TcpProxy) -> AsyncIterator[ServerProcess]:
    """A server whose database connections all go through ``relay``.

    Started in a thread: starting waits for the server to be healthy, and the relay it
    talks through runs on this event loop.
    """
    server = ServerProcess(database_url=relay.url)
    await asyncio.to_thread(server.start)
    yield server
    await asyncio.to_thread(server.stop)


async def test_the_database_out_of_reach_is_503_and_then_recovers(
    relay: TcpProxy, server_behind: ServerProcess
) -> None:
    email = f"{unique('down')}@example.test"
    async with httpx.AsyncClient(base_url=server_behind.url, timeout=30) as client:
        signed_up = await client.post(
            "/auth/sign-up", json={"email": email, "password": PASSWORD, "name": "D"}
        )
        assert signed_up.status_code == 201
        auth = {"Authorization": f"Bearer {signed_up.json()['token']}"}

        relay.accepting = False
        relay.sever()
        requests = [
            client.get("/me", headers=auth),
            client.get("/pages"),
            client.post("/organizations", json={"name": "n", "slug": unique("d-")}, headers=auth),
            client.post("/auth/sign-in", json={"email": email, "password": PASSWORD}),
        ]
        for request in requests:
            response = await request
            assert_problem(response, 503, "unavailable")
            assert int(response.headers["retry-after"]) >= 1
        health = await client.get("/health")
        assert health.status_code == 503
        assert health.json()["database"] != "ok"
        assert health.json()["instance"] == f"urn:request:{health.headers['x-request-id']}"
        assert "retry-after" in health.headers

        relay.accepting = True
        assert (await client.get("/me", headers=auth)).status_code == 200
        assert (await client.get("/health")).status_code == 200
