"""Persisted cursors: a restarted application resumes where it stopped."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from client.support import Org, RequestLog
from syncstream.client import Backoff, FileCursorStore, MemoryCursorStore, SyncClient

FAST = Backoff(initial=0.02, maximum=0.2)


async def test_a_new_run_resumes_from_the_cursor_saved_in_a_file(org: Org, tmp_path: Path) -> None:
    for name in ("a", "b", "c"):
        await org.create(name)
    path = tmp_path / "state" / "cursors.json"

    async with SyncClient(
        org.server_url, org.owner.token, cursor_store=FileCursorStore(path), backoff=FAST
    ) as client:
        async with client.org_stream(org.slug) as stream:
            first_run = [(await anext(stream)).activity_id for _ in range(2)]
        key = stream.key
    assert orjson.loads(path.read_bytes()) == {key: first_run[-1]}

    await org.create("d")
    log = RequestLog()
    async with (
        log.client() as http,
        SyncClient(
            org.server_url, org.owner.token, http=http, cursor_store=FileCursorStore(path), backoff=FAST
        ) as client,
        client.org_stream(org.slug) as stream,
    ):
        second_run = [(await anext(stream)).activity_id for _ in range(2)]

    assert first_run + second_run == await org.activity_ids()
    assert log.streams[0].headers["Last-Event-ID"] == first_run[-1]
    assert orjson.loads(path.read_bytes()) == {key: second_run[-1]}


async def test_a_message_whose_processing_failed_is_delivered_again(org: Org) -> None:
    await org.create("a")
    await org.create("b")
    store = MemoryCursorStore()
    async with SyncClient(org.server_url, org.owner.token, cursor_store=store, backoff=FAST) as client:
        stream = client.org_stream(org.slug)

        async def fail_on_the_second() -> tuple[str, str]:
            async with stream:
                first = await anext(stream)
                second = await anext(stream)
                raise RuntimeError(first.activity_id, second.activity_id)

        with pytest.raises(RuntimeError) as failed:
            await fail_on_the_second()
        first_id, second_id = failed.value.args
        assert store.cursors[stream.key] == first_id
        async with client.org_stream(org.slug) as stream:
            again = await anext(stream)
    assert again.activity_id == second_id


async def test_streams_with_different_filters_keep_separate_cursors(org: Org) -> None:
    async with SyncClient(org.server_url, org.owner.token) as client:
        everything = client.org_stream(org.slug)
        attachments = client.org_stream(org.slug, entity_types=["attachment"])
        same_in_json_mode = client.org_changes(org.slug, limit=5)
        await everything.aclose()
        await attachments.aclose()
        await same_in_json_mode.aclose()
    assert everything.key != attachments.key
    assert everything.key == same_in_json_mode.key


async def test_file_store_round_trip_and_damage(tmp_path: Path) -> None:
    path = tmp_path / "cursors.json"
    store = FileCursorStore(path)
    assert await store.load("k") is None
    await store.save("k", "42")
    await store.save("other", "7")
    await store.clear("other")
    assert await FileCursorStore(path).load("k") == "42"
    assert await FileCursorStore(path).load("other") is None
    path.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        await FileCursorStore(path).load("k")
