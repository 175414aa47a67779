"""The blocking client: the same client, driven from plain (non-async) code."""

from __future__ import annotations

import asyncio
import threading

from client.support import FAILSAFE_SECONDS, Org
from syncstream.client import CollectionChange, StreamMessage
from syncstream.client.sync import BlockingClient


def run_blocking(org: Org) -> tuple[list[StreamMessage], dict[str, dict[str, object]], list[str], bool]:
    email = org.owner.email
    with BlockingClient(org.server_url, timeout=FAILSAFE_SECONDS) as client:
        client.sign_in(email, "correct-horse")
        first = client.create(f"organizations/{org.slug}/attachments", {"name": "one"})
        with client.org_stream(org.slug, timeout=FAILSAFE_SECONDS) as stream:
            messages = [next(stream)]
        with client.org_collection(org.slug) as collection:
            changed = threading.Event()
            names: list[str] = []

            def on_change(change: CollectionChange) -> None:
                names.append(str((change.value or {}).get("name")))
                changed.set()

            collection.on_change(on_change)
            second = client.create(f"organizations/{org.slug}/attachments", {"name": "two"})
            collection.wait_for(lambda c: second["id"] in c, timeout=FAILSAFE_SECONDS)
            assert changed.wait(FAILSAFE_SECONDS)
            snapshot = collection.snapshot()
            assert collection.get(first["id"]) == snapshot[first["id"]]
            assert len(collection) == 2
        own = client.is_own(messages[0])
    return messages, snapshot, names, own


async def test_the_blocking_client_signs_in_writes_streams_and_keeps_a_collection(org: Org) -> None:
    # Run from a thread with no event loop, as a script would; this test's own loop keeps running.
    messages, snapshot, names, own = await asyncio.to_thread(run_blocking, org)
    assert [m.data["name"] for m in messages if m.data] == ["one"]
    assert own
    assert sorted(str(v["name"]) for v in snapshot.values()) == ["one", "two"]
    assert names == ["two"]
