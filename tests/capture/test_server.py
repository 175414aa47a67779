"""Change capture end to end: a real server with ``SYNCSTREAM_CAPTURE=on`` on each database, a
plain database connection (sqlite3 or asyncpg, no syncstream code) writing attachments beside
the API, real streams over real sockets.

On PostgreSQL the server's bus is the database itself (LISTEN/NOTIFY), so the triggers ring
it; on SQLite external writes are found by the tailer's poll (set short here).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import orjson
import pytest

from capture.plain import Plain
from databases import create_postgres_database, drop_postgres_database
from harness import Api, ServerProcess, Stream, unique

pytestmark = pytest.mark.asyncio(loop_scope="session")

BULK = 10_000
WRITERS = 4
WRITES = 15


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def capture_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('capture') / 'capture.db'}"
        bus = None
    else:
        url = asyncio.run(create_postgres_database())
        bus = url
    env = {
        "SYNCSTREAM_CAPTURE": "on",
        "SYNCSTREAM_POLL_SECONDS": "0.2",
        # A 10,000-row statement is routed in reads of 1,000: a test client reading as fast
        # as it can is no slow consumer (the default cut is at 1,000 queued messages).
        "SYNCSTREAM_SLOW_CONSUMER_MESSAGES": str(4 * BULK),
    }
    server = ServerProcess(database_url=url, bus_url=bus, env=env).start()
    yield server
    server.stop()
    if request.param == "postgresql":
        asyncio.run(drop_postgres_database(url))


INSERT = (
    "INSERT INTO attachments (id, organization_id, project_id, name, url, content_type, size, created_by, "
    "created_at, updated_at) VALUES (?, ?, NULL, ?, NULL, ?, ?, 'plain-client', ?, ?)"
)


@pytest.fixture
async def owner(capture_server: ServerProcess) -> AsyncIterator[tuple[Api, str]]:
    api = Api(capture_server.url)
    user = await api.sign_up()
    client = user.api()
    org = await client.ok("POST", "/organizations", 201, json={"name": "Acme", "slug": unique("acme-")})
    yield client, org["id"]
    await client.aclose()
    await api.aclose()


def change(event: Any) -> dict[str, Any]:
    assert event is not None, "the stream ended"
    assert event.event == "change", (event.event, event.data)
    decoded: dict[str, Any] = orjson.loads(event.data)
    return decoded


async def catch_up(client: Api, org: str, offset: str) -> list[dict[str, Any]]:
    """Every activity after ``offset``, through JSON pages."""
    found: list[dict[str, Any]] = []
    while True:
        page = await client.ok("GET", f"/organizations/{org}/sync/stream?offset={offset}&limit=1000")
        found.extend(page["activities"])
        if not page["hasMore"]:
            return found
        offset = page["cursor"]


async def open_at_now(client: Api, org: str) -> tuple[Stream, str]:
    stream = Stream(client.client, f"/organizations/{org}/sync/stream?live=sse&offset=now", client.headers())
    await stream.__aenter__()
    _, offset = await stream.until_offset()
    return stream, orjson.loads(offset.data)["cursor"] or "0"


async def test_plain_writes_and_api_writes_arrive_once_in_order_live_and_in_catch_up(
    capture_server: ServerProcess, owner: tuple[Api, str]
) -> None:
    client, org = owner
    plain = Plain(capture_server.database_url)
    stream, start = await open_at_now(client, org)
    try:

        async def api_writes(writer: int) -> list[str]:
            made = []
            for n in range(WRITES):
                tx = {"transactionId": unique("t"), "sourceId": "tab"}
                body = {"name": f"api {writer}.{n}", "tx": tx}
                made.append(
                    (await client.ok("POST", f"/organizations/{org}/attachments", 201, json=body))["id"]
                )
            return made

        async def plain_writes(writer: int) -> list[str]:
            made = []
            for n in range(WRITES):
                at = plain.now()
                row = (f"plain{writer}{n:02}{unique()}", org, f"plain {n}", "text/plain", n, at, at)
                await plain.run((INSERT, row))
                made.append(row[0])
            return made

        # Several writers of each kind at once: on PostgreSQL their commits race for IDs.
        made = await asyncio.gather(
            *(api_writes(w) for w in range(WRITERS)), *(plain_writes(w) for w in range(WRITERS))
        )
        ours, theirs = made[:WRITERS], made[WRITERS:]
        renamed = theirs[0][0]
        await plain.run(("UPDATE attachments SET name = ? WHERE id = ?", ("renamed", renamed)))
        expected = 2 * WRITERS * WRITES + 1
        live = [change(await stream.next()) for _ in range(expected)]
    finally:
        await stream.close()
    ids = [int(m["activityId"]) for m in live]
    assert ids == sorted(ids)
    assert len(set(ids)) == expected
    creates = [m["entityId"] for m in live if m["action"] == "create"]
    every = [e for made_by_one in made for e in made_by_one]
    assert sorted(creates) == sorted(every)  # each once: API writes not doubled
    for one in made:  # each writer's writes in the order it made them
        assert [e for e in creates if e in one] == one
    api_ids = {e for one in ours for e in one}
    assert all(m["tx"] is not None for m in live if m["entityId"] in api_ids)
    assert all(m["tx"] is None for m in live if m["entityId"] not in api_ids)
    update = live[-1]
    assert (update["action"], update["entityId"], update["changedKeys"]) == ("update", renamed, ["name"])
    # Catch-up reads the same activities, the same way.
    assert await catch_up(client, org, start) == live
    # The captured data is the API's rendering: GET answers the same JSON.
    for message in live:
        if message["entityId"] not in api_ids and message["entityId"] != renamed:
            got = await client.ok("GET", f"/organizations/{org}/attachments/{message['entityId']}")
            assert message["data"] == got
    assert update["data"] == await client.ok("GET", f"/organizations/{org}/attachments/{renamed}")


async def test_rollback_and_no_op_record_nothing_and_a_bulk_update_arrives_whole(
    capture_server: ServerProcess, owner: tuple[Api, str]
) -> None:
    client, org = owner
    plain = Plain(capture_server.database_url)
    at = plain.now()
    prefix = unique("bulk")
    rows = [(INSERT, (f"{prefix}{n:05}", org, f"bulk {n}", None, n, at, at)) for n in range(BULK)]
    await plain.run(*rows)
    stream, start = await open_at_now(client, org)
    try:
        await plain.run((INSERT, (unique("gone"), org, "never", None, 1, at, at)), rollback=True)
        await plain.run(("UPDATE attachments SET name = name WHERE organization_id = ?", (org,)))
        await plain.run(("UPDATE attachments SET size = size + 1 WHERE organization_id = ?", (org,)))
        live = [change(await stream.next()) for _ in range(BULK)]
    finally:
        await stream.close()
    ids = [int(m["activityId"]) for m in live]
    assert ids == sorted(ids)
    assert {m["action"] for m in live} == {"update"}
    assert {tuple(m["changedKeys"]) for m in live} == {("size",)}
    assert sorted(m["entityId"] for m in live) == [f"{prefix}{n:05}" for n in range(BULK)]
    assert sorted(m["data"]["size"] for m in live) == list(range(1, BULK + 1))
    # Nothing before them (the rollback, the no-op), nothing after them.
    assert await catch_up(client, org, start) == live
