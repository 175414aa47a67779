"""The live collection, sign-in and write helpers, and the connection callbacks."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from client.support import (
    FAILSAFE_SECONDS,
    Org,
    ScriptedServer,
    change,
    offset,
    problem,
    sse,
)
from harness import unique
from syncstream.client import (
    Backoff,
    CollectionChange,
    Connected,
    Disconnected,
    LiveCollection,
    MustRefetch,
    ProblemError,
    SyncClient,
    Unauthorized,
)

FAST = Backoff(initial=0.02, maximum=0.2)


async def test_sign_up_sign_in_and_sign_out(org: Org) -> None:
    email = f"{unique('s')}@example.test"
    async with SyncClient(org.server_url) as client:
        signed_up = await client.sign_up(email, "correct-horse", "Sam")
        assert client.token == signed_up["token"]
        signed_in = await client.sign_in(email, "correct-horse")
        assert signed_in["user"]["email"] == email
        assert client.token == signed_in["token"] != signed_up["token"]
        await client.sign_out()
        assert client.token is None
        with pytest.raises(Unauthorized):
            await client.sign_in(email, "wrong-horse")


async def test_the_collection_mirrors_the_stream_and_recognises_its_own_writes(org: Org) -> None:
    earlier = await org.create("earlier")  # history: read before the collection is ready
    async with SyncClient(org.server_url, org.owner.token) as client:
        seen: list[CollectionChange] = []
        async with client.org_collection(org.slug, entity_types=["attachment"]) as attachments:
            attachments.on_change(seen.append)
            await asyncio.wait_for(attachments.ready(), FAILSAFE_SECONDS)
            assert attachments.is_ready
            assert dict(attachments) == {earlier["id"]: attachments[earlier["id"]]}
            assert attachments[earlier["id"]]["name"] == "earlier"

            mine = await client.create(f"organizations/{org.slug}/attachments", {"name": "mine"})
            theirs = await org.create("theirs")
            await client.update(f"organizations/{org.slug}/attachments/{mine['id']}", {"name": "renamed"})
            await client.delete(f"organizations/{org.slug}/attachments/{earlier['id']}")
            async with asyncio.timeout(FAILSAFE_SECONDS):
                await attachments.wait_for(
                    lambda c: earlier["id"] not in c and c.get(mine["id"], {}).get("name") == "renamed"
                )
            assert set(attachments) == {mine["id"], theirs["id"]}
            assert attachments.snapshot()[theirs["id"]]["name"] == "theirs"

    by_action = [(c.action, c.entity_id, c.own) for c in seen]
    assert by_action == [
        ("create", earlier["id"], False),  # callbacks see the history too
        ("create", mine["id"], True),
        ("create", theirs["id"], False),
        ("update", mine["id"], True),
        ("delete", earlier["id"], False),  # the contract takes no tx on a delete
    ]
    update = seen[3]
    assert update.previous is not None
    assert update.previous["name"] == "mine"
    assert update.value is not None
    assert update.value["name"] == "renamed"
    assert update.message.tx is not None
    assert update.message.tx.changed_field == "name"
    assert seen[4].value is None


async def test_a_create_repeated_with_the_same_tx_writes_once(org: Org) -> None:
    async with SyncClient(org.server_url, org.owner.token) as client:
        tx = client.new_tx()
        first = await client.create(f"organizations/{org.slug}/attachments", {"name": "once"}, tx=tx)
        again = await client.create(f"organizations/{org.slug}/attachments", {"name": "once"}, tx=tx)
        assert again["id"] == first["id"]
        with pytest.raises(ProblemError) as refused:
            await client.create(f"organizations/{org.slug}/attachments", {"name": ""})
        assert refused.value.status == 422


async def test_must_refetch_empties_the_collection_and_reads_it_again() -> None:
    script = [
        sse(change(1, "old"), offset(1)),
        problem(409, "must_refetch", "history was pruned"),
        sse(change(5, "new"), offset(5)),
    ]
    resets: list[MustRefetch] = []
    sizes: list[int] = []
    async with (
        ScriptedServer(script).running() as scripted,
        SyncClient(scripted.url, "t", backoff=FAST) as client,
        client.collection("/organizations/o/sync/stream") as collection,
    ):

        def on_reset(error: MustRefetch, collection: LiveCollection = collection) -> None:
            resets.append(error)
            sizes.append(len(collection))

        collection.on_reset(on_reset)
        async with asyncio.timeout(FAILSAFE_SECONDS):
            await collection.wait_for(lambda c: "att_5" in c)
        assert set(collection) == {"att_5"}
        assert collection.is_ready
    assert len(resets) == 1
    assert resets[0].cursor == "1"
    assert sizes == [0]  # emptied before the callback ran
    assert scripted.requests[2].url.params["offset"] == "-1"


async def test_a_fatal_error_ends_the_collection_and_is_raised_to_waiters() -> None:
    async with (
        ScriptedServer([problem(401, "unauthorized")]).running() as scripted,
        SyncClient(scripted.url, "bad", backoff=FAST) as client,
        client.collection("/pages/stream") as collection,
    ):
        with pytest.raises(Unauthorized):
            await asyncio.wait_for(collection.ready(), FAILSAFE_SECONDS)
        assert isinstance(collection.error, Unauthorized)


async def test_connected_and_disconnected_callbacks() -> None:
    script = [sse(change(1), offset(1)), sse(offset(1))]
    events: list[Any] = []
    both_connected = asyncio.Event()

    async def on_connected(event: Connected) -> None:
        events.append(event)
        if sum(isinstance(e, Connected) for e in events) == 2:
            both_connected.set()

    async with (
        ScriptedServer(script).running() as scripted,
        SyncClient(
            scripted.url,
            backoff=FAST,
            on_connected=on_connected,
            on_disconnected=events.append,
        ) as client,
        client.collection("/pages/stream"),
    ):
        await asyncio.wait_for(both_connected.wait(), FAILSAFE_SECONDS)
    kinds = [type(e) for e in events]
    assert kinds == [Connected, Disconnected, Connected]
    assert isinstance(events[1], Disconnected)
    assert events[1].reason == "the server closed the stream"
    assert events[2].cursor == "1"
