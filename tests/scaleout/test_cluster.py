"""One consistent stream from several processes: every activity, once, in order."""

from __future__ import annotations

import asyncio
import itertools

import httpx
import orjson
import pytest

from harness import Api, ServerProcess, Stream, User, unique

from .conftest import Cluster

pytestmark = pytest.mark.asyncio(loop_scope="session")

WRITERS = 16
WRITES_EACH = 12
SENTINEL = "sentinel"


async def setup_org(server: ServerProcess) -> tuple[User, dict[str, str]]:
    api = Api(server.url)
    owner = await api.sign_up()
    await api.aclose()
    client = owner.api()
    org = await client.ok("POST", "/organizations", 201, json={"name": "C", "slug": unique("c")})
    await client.aclose()
    return owner, org


async def write_through(servers: list[ServerProcess], owner: User, org_id: str, index: int) -> None:
    """One writer, spreading its writes over every process in turn."""
    rotation = itertools.cycle(servers[index % len(servers) :] + servers[: index % len(servers)])
    async with httpx.AsyncClient(timeout=30) as client:
        for n in range(WRITES_EACH):
            server = next(rotation)
            response = await client.post(
                f"{server.url}/organizations/{org_id}/attachments",
                json={"name": f"w{index}-{n}"},
                headers={"Authorization": f"Bearer {owner.token}"},
            )
            assert response.status_code == 201, response.text


async def follow(
    servers: list[ServerProcess], owner: User, org_id: str, start: ServerProcess, offset: str
) -> list[tuple[int, str]]:
    """Read until the sentinel, moving to another process with Last-Event-ID whenever the
    current one goes away."""
    got: list[tuple[int, str]] = []
    last: str | None = None
    others = itertools.cycle([s for s in servers if s is not start])
    server = start
    async with httpx.AsyncClient(timeout=httpx.Timeout(60, connect=5)) as client:
        while True:
            headers = {"Authorization": f"Bearer {owner.token}"} | ({"Last-Event-ID": last} if last else {})
            url = f"{server.url}/organizations/{org_id}/sync/stream?offset={offset}&live=sse"
            try:
                async with Stream(client, url, headers) as stream:
                    while (event := await stream.next(wait_seconds=60)) is not None:
                        if event.event != "change":
                            continue
                        message = orjson.loads(event.data)
                        got.append((int(message["activityId"]), message["data"]["name"]))
                        last = event.id
                        if message["data"]["name"] == SENTINEL:
                            return got
            except httpx.HTTPError:
                pass
            server = next(others)


async def truth(server: ServerProcess, owner: User, org_id: str, offset: str) -> list[tuple[int, str]]:
    api = owner.api()
    api.client.base_url = httpx.URL(server.url)
    out: list[tuple[int, str]] = []
    while True:
        page = await api.ok("GET", f"/organizations/{org_id}/sync/stream?offset={offset}&limit=1000")
        out += [(int(m["activityId"]), m["data"]["name"]) for m in page["activities"]]
        offset = page["cursor"]
        if not page["hasMore"]:
            break
    await api.aclose()
    return out


async def test_every_process_streams_every_write_through_a_bus_blip(cluster: Cluster) -> None:
    servers = cluster.servers
    owner, org = await setup_org(servers[0])
    readers = [
        asyncio.create_task(follow(servers, owner, org["id"], server, "-1"))
        for server in servers
        for _ in range(2)
    ]
    writers = [asyncio.create_task(write_through(servers, owner, org["id"], i)) for i in range(WRITERS)]
    await asyncio.sleep(0)  # let the first writes start before the blip; the order is not asserted
    cluster.bus.accepting = False
    cluster.bus.sever()  # every process loses its bus connection mid-run
    cluster.bus.accepting = True
    await asyncio.gather(*writers)
    sentinel_server = servers[-1]
    client = owner.api()
    client.client.base_url = httpx.URL(sentinel_server.url)
    await client.ok("POST", f"/organizations/{org['id']}/attachments", 201, json={"name": SENTINEL})
    await client.aclose()
    expected = await truth(servers[0], owner, org["id"], "-1")
    assert len(expected) == WRITERS * WRITES_EACH + 1
    for reader in readers:
        got = await asyncio.wait_for(reader, 120)
        assert got == expected


async def test_a_killed_process_clients_resume_on_another(cluster: Cluster) -> None:
    servers = cluster.servers
    owner, org = await setup_org(servers[0])
    victim = servers[1]
    survivors = [servers[0], servers[2]]
    readers = [asyncio.create_task(follow(servers, owner, org["id"], victim, "-1")) for _ in range(3)]
    writers = [asyncio.create_task(write_through(survivors, owner, org["id"], i)) for i in range(WRITERS)]
    await asyncio.sleep(0)
    await asyncio.to_thread(victim.kill)
    await asyncio.gather(*writers)
    client = owner.api()
    await client.ok("POST", f"/organizations/{org['id']}/attachments", 201, json={"name": SENTINEL})
    await client.aclose()
    expected = await truth(servers[0], owner, org["id"], "-1")
    for reader in readers:
        assert await asyncio.wait_for(reader, 120) == expected
