"""The client's SSE streams against the real server: delivery, typed messages and resuming."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import httpx
import orjson

from client.support import (
    Org,
    Reader,
    RequestLog,
    changes,
    make_org,
    of_type,
    start_server_process,
    take_until,
)
from harness import Api, ServerProcess, unique
from syncstream.client import (
    Backoff,
    CaughtUp,
    Change,
    Connected,
    Connecting,
    Disconnected,
    StreamMessage,
    StreamState,
    SyncClient,
)

FAST = Backoff(initial=0.02, maximum=0.2)


async def test_org_stream_yields_history_then_live_changes_as_typed_messages(org: Org) -> None:
    first = await org.create("plan.pdf")
    tx = {"transactionId": unique("t"), "sourceId": "tab-1", "changedField": "name"}
    await org.rename(first["id"], "plan-v2.pdf", tx=tx)
    async with SyncClient(org.server_url, org.owner.token, backoff=FAST) as client:
        subscription = client.org_stream(org.slug, entity_types=["attachment"])
        async with Reader(subscription) as reader:
            created: StreamMessage = await reader.next()
            updated: StreamMessage = await reader.next()
            later = await org.create("live.txt")
            live: StreamMessage = await reader.next()

    assert (created.action, created.entity_id, created.changed_keys) == ("create", first["id"], None)
    assert created.organization_id == org.id
    assert created.data is not None
    assert created.data["name"] == "plan.pdf"
    assert (updated.action, updated.changed_keys) == ("update", ["name"])
    assert updated.tx is not None
    assert updated.tx.transaction_id == tx["transactionId"]
    assert updated.tx.source_id == "tab-1"
    assert updated.tx.changed_field == "name"
    assert (live.action, live.entity_id) == ("create", later["id"])
    assert created.activity_id_int < updated.activity_id_int < live.activity_id_int
    assert [created.activity_id, updated.activity_id, live.activity_id] == await org.activity_ids()


async def test_follow_reports_the_connection_and_the_exact_bytes(org: Org) -> None:
    await org.create("a")
    async with SyncClient(org.server_url, org.owner.token, backoff=FAST) as client:
        subscription = client.follow(client.org_stream_url(org.slug))
        async with Reader(subscription) as reader:
            events = await reader.until(of_type(CaughtUp))
            assert subscription.state is StreamState.LIVE
    assert isinstance(events[0], Connecting)
    assert events[0].cursor is None
    assert isinstance(events[1], Connected)
    change = events[2]
    assert isinstance(change, Change)
    # The message model writes the server's JSON back byte for byte (same field order, same time format).
    assert change.message.to_wire_json() == change.raw
    assert events[3] == CaughtUp(cursor=change.message.activity_id)
    assert subscription.cursor == change.message.activity_id


async def test_reconnect_resumes_with_last_event_id_and_loses_nothing(org: Org) -> None:
    for name in ("a", "b", "c"):
        await org.create(name)
    log = RequestLog()
    async with (
        log.client() as http,
        SyncClient(org.server_url, org.owner.token, http=http, backoff=FAST) as client,
        client.follow(client.org_stream_url(org.slug)) as subscription,
    ):
        before = await take_until(subscription, of_type(Change))
        # Drop the connection from the client side after the first change.
        subscription.reconnect()
        during = await take_until(subscription, of_type(CaughtUp))
        await org.create("d")
        after = await take_until(subscription, of_type(Change))

    received = changes(before + during + after)
    assert received == await org.activity_ids()
    assert len(log.streams) == 2
    first_id = changes(before)[0]
    resumed = log.streams[1]
    assert resumed.headers["Last-Event-ID"] == first_id
    assert resumed.url.params["offset"] == first_id
    assert "Last-Event-ID" not in log.streams[0].headers
    assert next(e for e in during if isinstance(e, Connecting)).cursor == first_id


async def test_resumes_after_the_server_restarts_and_loses_nothing(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'restart.db'}"
    primary = await start_server_process(database_url)
    try:
        org = await make_org(primary.url)
        await org.create("one")
        await org.create("two")
        log = RequestLog()
        async with (
            log.client() as http,
            SyncClient(primary.url, org.owner.token, http=http) as client,
        ):
            subscription = client.follow(client.org_stream_url(org.slug))
            async with Reader(subscription) as reader:
                history = await reader.until(of_type(CaughtUp))
                cursor = subscription.cursor

                await asyncio.to_thread(primary.stop)  # closes its streams cleanly, as on a deploy
                # The server said it was shutting down (event: close): the client reconnects at once...
                closed = await reader.until(of_type(Disconnected))
                assert closed[-1].retry_in == 0.0
                assert "shutdown" in closed[-1].reason
                # ...and keeps trying until it finds the server gone.
                await reader.until(
                    lambda e: isinstance(e, Disconnected) and isinstance(e.error, httpx.ConnectError)
                )
                # While the client cannot connect, another server on the same database takes writes:
                # the client must get them in its catch-up when it comes back.
                other = await start_server_process(database_url)
                try:
                    missed = Org(other.url, org.owner, org.slug, org.id)
                    await missed.create("three")
                    await missed.create("four")
                finally:
                    await asyncio.to_thread(other.stop)
                await asyncio.to_thread(primary.start)

                caught_up = await reader.until(of_type(CaughtUp))
                await org.create("five")
                live = await reader.until(of_type(Change))
        expected = await org.activity_ids()
    finally:
        primary.stop()

    received = changes(history + caught_up + live)
    assert received == expected
    assert len(received) == 5
    assert len(changes(caught_up)) == 2
    resumed = [r for r in log.streams if r.headers.get("Last-Event-ID")]
    assert resumed, "the client never resumed"
    assert {r.headers["Last-Event-ID"] for r in resumed} == {cursor}


async def test_pages_stream_is_public(server: ServerProcess, tmp_path: Path) -> None:
    email = f"{unique('admin')}@example.test"
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "syncstream.cli",
        "user",
        "create",
        email,
        "--password",
        "correct-horse",
        "--admin",
        "--database-url",
        server.database_url,
        stdout=asyncio.subprocess.PIPE,
    )
    stdout, _ = await process.communicate()
    assert process.returncode == 0
    admin_token = orjson.loads(stdout)["token"]
    async with SyncClient(server.url, backoff=FAST) as client:
        start = (await client.fetch_page(client.pages_stream_url(), offset="now")).cursor
        subscription = client.pages_stream(offset=start or "-1")
        async with Reader(subscription) as reader:
            api = Api(server.url, admin_token)
            page = await api.ok("POST", "/pages", 201, json={"title": "Hello", "content": "World"})
            await api.aclose()
            message: StreamMessage = await reader.next()
            while message.entity_id != page["id"]:  # other tests may write pages meanwhile
                message = await reader.next()
    assert (message.action, message.entity_type, message.tx) == ("create", "page", None)
    assert message.data is not None
    assert message.data["title"] == "Hello"
