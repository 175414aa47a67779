"""JSON mode: paging with ``cursor`` until ``hasMore`` is false."""

from __future__ import annotations

from client.support import Org, RequestLog
from syncstream.client import Backoff, MemoryCursorStore, SyncClient

FAST = Backoff(initial=0.02, maximum=0.2)


async def test_org_changes_pages_until_has_more_is_false(org: Org) -> None:
    for index in range(5):
        await org.create(f"file-{index}")
    log = RequestLog()
    async with log.client() as http, SyncClient(org.server_url, org.owner.token, http=http) as client:
        messages = [m async for m in client.org_changes(org.slug, limit=2)]
    assert [m.activity_id for m in messages] == await org.activity_ids()
    assert [m.data["name"] for m in messages if m.data] == [f"file-{i}" for i in range(5)]
    offsets = [r.url.params["offset"] for r in log.requests]
    assert offsets == ["-1", messages[1].activity_id, messages[3].activity_id]
    assert {r.url.params["limit"] for r in log.requests} == {"2"}
    assert all("live" not in r.url.params for r in log.requests)


async def test_paging_with_a_store_reads_only_what_is_new(org: Org) -> None:
    await org.create("a")
    store = MemoryCursorStore()
    async with SyncClient(org.server_url, org.owner.token, cursor_store=store, backoff=FAST) as client:
        first = [m.activity_id async for m in client.org_changes(org.slug)]
        nothing = [m.activity_id async for m in client.org_changes(org.slug)]
        await org.create("b")
        second = [m.activity_id async for m in client.org_changes(org.slug)]
    assert nothing == []
    assert first + second == await org.activity_ids()


async def test_fetch_page_returns_one_typed_page(org: Org) -> None:
    await org.create("a")
    await org.create("b")
    async with SyncClient(org.server_url, org.owner.token) as client:
        page = await client.fetch_page(client.org_stream_url(org.slug), limit=1)
        rest = await client.fetch_page(client.org_stream_url(org.slug), offset=page.cursor or "-1", limit=1)
    assert page.has_more
    assert not rest.has_more
    assert [page.activities[0].activity_id, rest.activities[0].activity_id] == await org.activity_ids()
