"""The database out of reach for a while (PostgreSQL behind a TCP relay the test cuts).

While it is down: every write is ``503 unavailable`` with ``Retry-After`` (never a 500),
reads and sign-ins too, a new stream is refused with a 503 problem rather than started,
and the streams already open stay open (their keep-alive pings keep coming) or end
cleanly. When it is back: writes succeed again, and every stream — kept, or resumed with
``Last-Event-ID`` — carries every activity exactly once, in order, from before the outage
to after it. (tests/scaleout/test_outages.py shows one stream over a Redis bus; this is
more streams of both kinds, reads and writes of every sort, and the exact history.)
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import pytest_asyncio

from api.support import PASSWORD, assert_problem, create_org
from databases import create_postgres_database, drop_postgres_database
from harness import Api, ServerProcess, unique
from tcp_proxy import TcpProxy

from .support import RawStream, admin_user, assert_exactly_once_in_order, everything, open_stream, until

pytestmark = pytest.mark.asyncio(loop_scope="session")


@dataclass
class Outage:
    server: ServerProcess
    relay: TcpProxy

    def down(self) -> None:
        self.relay.accepting = False
        self.relay.sever()

    def up(self) -> None:
        self.relay.accepting = True


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def outage() -> AsyncIterator[Outage]:
    url = await create_postgres_database()
    relay = TcpProxy(url)
    await relay.start()
    server = ServerProcess(database_url=relay.url)
    try:
        await asyncio.to_thread(server.start)  # in a thread: the relay runs on this loop
        yield Outage(server, relay)
    finally:
        relay.accepting = True
        await asyncio.to_thread(server.stop)
        await relay.close()
        await drop_postgres_database(url)


async def until_health(base_url: str, holds: Callable[[int, dict[str, Any]], bool], what: str) -> None:
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:

        async def check() -> bool:
            response = await client.get("/health")
            return holds(response.status_code, response.json())

        await until(check, what)


async def test_writes_are_503_streams_survive_and_nothing_is_lost(outage: Outage) -> None:
    server = outage.server
    api = Api(server.url)
    owner = await api.sign_up()
    admin = await admin_user(server, api)
    org = await create_org(api, owner.token)
    org_path = f"/organizations/{org['id']}/sync/stream"
    attachments = f"/organizations/{org['id']}/attachments"
    streams: list[tuple[str, str | None, RawStream]] = []
    for _ in range(3):
        streams.append(
            (
                org_path,
                owner.token,
                await open_stream(server.port, f"{org_path}?offset=now&live=sse", token=owner.token),
            )
        )
    streams.append(
        ("/pages/stream", None, await open_stream(server.port, "/pages/stream?offset=now&live=sse"))
    )
    starts = [int(s.offsets[0]["cursor"] or 0) for _, _, s in streams]
    committed = [
        (await api.ok("POST", attachments, 201, json={"name": f"before{n}"}, token=owner.token))["id"]
        for n in range(5)
    ]
    committed.append(
        (await api.ok("POST", "/pages", 201, json={"title": "before", "content": ""}, token=admin.token))[
            "id"
        ]
    )

    outage.down()
    await until_health(
        server.url, lambda status, body: status == 503 and body["database"] == "unavailable", "the outage"
    )
    pings = [s.pings for _, _, s in streams]
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        auth = {"Authorization": f"Bearer {owner.token}"}
        during = [
            await client.post(attachments, json={"name": f"during{n}"}, headers=auth) for n in range(5)
        ] + [
            await client.post(
                "/pages",
                json={"title": "t", "content": ""},
                headers={"Authorization": f"Bearer {admin.token}"},
            ),
            await client.post("/organizations", json={"name": "n", "slug": unique("o-")}, headers=auth),
            await client.get("/me", headers=auth),
            await client.get(attachments, headers=auth),
            await client.get(org_path, headers=auth),
            await client.get("/pages/stream"),
            await client.post("/auth/sign-in", json={"email": owner.email, "password": PASSWORD}),
            await client.post(
                "/auth/sign-up",
                json={"email": f"{unique('d')}@example.test", "password": PASSWORD, "name": "D"},
            ),
        ]
        for response in during:
            assert_problem(response, 503, "unavailable")
            assert int(response.headers["retry-after"]) >= 1
    # A new stream is refused, not started and then broken.
    refused = await open_stream(server.port, "/pages/stream?live=sse", ready=False)
    await refused.until(lambda s: s.status != 0)
    refused.abort()
    assert refused.status == 503, refused.body
    # The open ones stay open: their pings keep coming while the database is away.
    for (_, _, stream), before in zip(streams, pings, strict=True):
        await stream.until(lambda s, before=before: s.pings > before or s.closed.done())
        assert not stream.closed.done() or stream.ended_cleanly
    outage.up()
    await until_health(server.url, lambda status, body: status == 200, "the recovery")

    committed += [
        (await api.ok("POST", attachments, 201, json={"name": f"after{n}"}, token=owner.token))["id"]
        for n in range(5)
    ]
    page = await api.ok("POST", "/pages", 201, json={"title": "after", "content": ""}, token=admin.token)
    committed.append(page["id"])
    sentinels = {org_path: committed[-2], "/pages/stream": page["id"]}
    for n, ((path, token, stream), start) in enumerate(zip(streams, starts, strict=True)):
        history = []
        if stream.closed.done():  # it ended cleanly above: resume where it stopped
            history = list(stream.changes)
            stream = await open_stream(
                server.port, f"{path}?live=sse", token=token, last_event_id=stream.last_id or start
            )
        await stream.until(
            lambda s, want=sentinels[path]: any(c.message["entityId"] == want for c in s.changes)
        )
        stream.abort()
        history += stream.changes
        truth = await everything(api, path, token)
        ids = [c.id for c in history]
        assert_exactly_once_in_order(ids, f"stream {n}")
        assert ids == [int(m["activityId"]) for m in truth if int(m["activityId"]) > start], f"stream {n}"
        logged = {m["entityId"] for m in truth}
        kind = (
            [e for e in committed if e.startswith("pg_")]
            if path == "/pages/stream"
            else [e for e in committed if not e.startswith("pg_")]
        )
        assert set(kind) <= logged, f"stream {n}: a write that got its 201 is missing"
    await api.aclose()


async def test_the_health_503_is_a_problem(outage: Outage) -> None:
    outage.down()
    try:
        async with httpx.AsyncClient(base_url=outage.server.url, timeout=10) as client:
            await until_health(outage.server.url, lambda status, body: status == 503, "the outage")
            response = await client.get("/health")
    finally:
        outage.up()
        await until_health(outage.server.url, lambda status, body: status == 200, "the recovery")
    body = assert_problem(response, 503, "unavailable")
    assert body["database"] == "unavailable"
