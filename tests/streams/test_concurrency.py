"""Gapless, exactly once, in order: many writers, readers joining mid-catch-up and
reconnecting over and over with Last-Event-ID."""

from __future__ import annotations

import asyncio
import random

import orjson
import pytest

from harness import Api, Stream

from .conftest import World

pytestmark = pytest.mark.asyncio(loop_scope="session")

WRITERS = 16
WRITES_EACH = 20
SENTINEL = "sentinel"


async def writer(world: World, index: int) -> None:
    api = world.owner.api()
    for n in range(WRITES_EACH):
        project = world.project["id"] if (index + n) % 3 == 0 else None
        await api.ok(
            "POST",
            f"/organizations/{world.org['id']}/attachments",
            201,
            json={"name": f"w{index}-{n}", "projectId": project},
        )
    await api.aclose()


async def read_until_sentinel(api: Api, url: str, last_event_id: str | None = None) -> list[tuple[int, str]]:
    """One connection; returns (activityId, name) pairs up to and including the sentinel."""
    headers = api.headers() | ({"Last-Event-ID": last_event_id} if last_event_id else {})
    got: list[tuple[int, str]] = []
    async with Stream(api.client, url, headers) as stream:
        while True:
            event = await stream.next(wait_seconds=60)
            assert event is not None, "stream ended early"
            if event.event == "change":
                message = orjson.loads(event.data)
                assert event.id == message["activityId"]
                got.append((int(message["activityId"]), message["data"]["name"]))
                if message["data"]["name"] == SENTINEL:
                    return got


async def reconnecting_reader(api: Api, url: str, seed: int) -> list[tuple[int, str]]:
    """Reads a few events per connection, then drops and resumes from the last ID seen."""
    rng = random.Random(seed)
    got: list[tuple[int, str]] = []
    last: str | None = None
    while not got or got[-1][1] != SENTINEL:
        budget = rng.randint(1, 40)
        headers = api.headers() | ({"Last-Event-ID": last} if last else {})
        async with Stream(api.client, url, headers) as stream:
            while budget > 0:
                event = await stream.next(wait_seconds=60)
                assert event is not None
                if event.event != "change":
                    continue
                message = orjson.loads(event.data)
                got.append((int(message["activityId"]), message["data"]["name"]))
                last = event.id
                budget -= 1
                if message["data"]["name"] == SENTINEL:
                    break
    return got


async def test_many_writers_many_readers(world: World) -> None:
    start = await world.create("start")
    owner = world.owner.api()
    first = await owner.ok("GET", world.stream_url("offset=-1&limit=1000"))
    start_id = next(m["activityId"] for m in first["activities"] if m["entityId"] == start["id"])
    url = world.stream_url(f"offset={start_id}&live=sse")

    readers: list[tuple[str, Api, asyncio.Task[list[tuple[int, str]]]]] = []

    def spawn(kind: str, user_api: Api, coro: object) -> None:
        readers.append((kind, user_api, asyncio.ensure_future(coro)))  # type: ignore[call-overload]

    for i, user in enumerate((world.owner, world.member, world.project_member)):
        api = user.api()
        spawn(f"early-{i}", api, read_until_sentinel(api, url))
    writers = [asyncio.create_task(writer(world, i)) for i in range(WRITERS)]
    # Join mid-write: catch-up runs while activities keep committing.
    for i, user in enumerate((world.owner, world.member, world.both, world.project_member)):
        await asyncio.sleep(0)  # let some writes land first; ordering does not matter for the test
        api = user.api()
        spawn(f"late-{i}", api, read_until_sentinel(api, url))
        api2 = user.api()
        spawn(f"reconnecting-{i}", api2, reconnecting_reader(api2, url, seed=i))
    await asyncio.gather(*writers)
    # Every reader can see one of the two: project-only members the first, plain members the second.
    await world.create(SENTINEL, world.project["id"])
    await world.create(SENTINEL)

    truth_pages = []
    offset = start_id
    while True:
        page = await owner.ok("GET", world.stream_url(f"offset={offset}&limit=1000"))
        truth_pages += page["activities"]
        offset = page["cursor"]
        if not page["hasMore"]:
            break
    everything = [(int(m["activityId"]), m["data"]["name"], m["projectId"]) for m in truth_pages]
    assert len(everything) == WRITERS * WRITES_EACH + 2

    def visible_to(kind: str, project_id: str | None) -> bool:
        index = int(kind.rsplit("-", 1)[1])
        user = {"early": (world.owner, world.member, world.project_member)}.get(
            kind.split("-")[0], (world.owner, world.member, world.both, world.project_member)
        )[index]
        if user is world.owner:
            return True
        if user is world.member:
            return project_id is None
        if user is world.project_member:
            return project_id == world.project["id"]
        return True  # both: unscoped + the project; no other project is used here

    for kind, api, task in readers:
        got = await asyncio.wait_for(task, 120)
        visible = [(i, name) for i, name, project in everything if visible_to(kind, project)]
        names = [name for _, name in visible]
        expected = visible[: names.index(SENTINEL) + 1]
        ids = [i for i, _ in got]
        assert ids == sorted(set(ids)), f"{kind}: out of order or duplicated"
        assert got == expected, kind
        await api.aclose()
    await owner.aclose()
