"""Resuming from the tailer's recent window (``activities/recent.py``): a stream that comes
back with ``Last-Event-ID`` a little behind catches up from memory, and gets exactly what
a read of the log gives (the same frames as a server that keeps no window, and as the
JSON page); a project-only member gets only what it may read; after a restart the window
is read back at start; and a pruned cursor is refused even while its activities are held.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from api.support import assert_problem, run_cli
from hardening.support import fresh_database
from harness import Api, ServerProcess, Stream, User
from streams.conftest import World, make_world

pytestmark = pytest.mark.asyncio(loop_scope="session")

BACKENDS = ("sqlite", "postgresql")
#: A window smaller than what the tests write, so that an older cursor falls below it.
WINDOW = 8
#: Bytes of data per attachment name: frames big enough to count, small enough to hold.
NAME = "n" * 200


@dataclass
class Setup:
    database_url: str
    server: ServerProcess
    world: World


@pytest.fixture(params=BACKENDS)
async def setup(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Setup]:
    """A server of its own on a database of its own: tests here restart it and prune."""
    async with fresh_database(request.param, tmp_path) as url:
        server = ServerProcess(database_url=url, env={"SYNCSTREAM_RECENT_ACTIVITIES": str(WINDOW)})
        setup = None
        try:
            await asyncio.to_thread(server.start)
            setup = Setup(url, server, await make_world(server))
            yield setup
        finally:
            # The server running now: a test may have restarted it (restart()).
            await asyncio.to_thread((setup.server if setup is not None else server).stop)


async def restart(setup: Setup, **env: str) -> None:
    """Stop the server and start another on the same database (``env`` on top)."""
    await asyncio.to_thread(setup.server.stop)
    setup.server = ServerProcess(database_url=setup.database_url, env=env)
    setup.world.server = setup.server
    await asyncio.to_thread(setup.server.start)
    for user in (setup.world.owner, setup.world.project_member, setup.world.both):
        user.base_url = setup.server.url


async def write(world: World, count: int) -> list[str]:
    """Attachments in the project, in the other project and unscoped, in turn."""
    projects = [world.project["id"], world.other_project["id"], None]
    return [
        (await world.create(f"{NAME}{n}", projects[n % 3]))["id"]
        for n in range(count)  # one at a time: commit order
    ]


async def cursor(user: User, world: World) -> str:
    api = user.api()
    try:
        page = await api.ok("GET", world.stream_url("offset=now"))
        return str(page["cursor"])
    finally:
        await api.aclose()


async def resume(
    user: User, world: World, last_event_id: str
) -> tuple[list[tuple[str, str]], dict[str, Any]]:
    """The frames of a resume with ``Last-Event-ID``: (id, data) of each change, and the offset."""
    api = user.api()
    try:
        headers = {**api.headers(), "Last-Event-ID": last_event_id}
        async with Stream(api.client, world.stream_url("live=sse"), headers) as stream:
            assert stream.response is not None
            assert stream.response.status_code == 200
            changes, offset = await stream.until_offset()
        return [(str(c.id), c.data) for c in changes], orjson.loads(offset.data)
    finally:
        await api.aclose()


async def json_catch_up(user: User, world: World, after: str) -> list[dict[str, Any]]:
    api = user.api()
    try:
        messages: list[dict[str, Any]] = []
        while True:
            page = await api.ok("GET", world.stream_url(f"offset={after}&limit=1000"))
            messages.extend(page["activities"])
            if not page["hasMore"]:
                return messages
            after = page["cursor"]
    finally:
        await api.aclose()


def as_messages(frames: list[tuple[str, str]]) -> list[dict[str, Any]]:
    messages = [orjson.loads(data) for _, data in frames]
    assert [m["activityId"] for m in messages] == [i for i, _ in frames]  # the SSE id is the activity's
    return messages


async def test_a_resume_in_the_window_sends_what_the_log_holds(setup: Setup) -> None:
    world = setup.world
    start = await cursor(world.owner, world)
    created = await write(world, WINDOW + 4)
    # Within the window (the newest few) and below it (the oldest cursor).
    newest = await json_catch_up(world.owner, world, start)
    assert [m["entityId"] for m in newest] == created
    ids = [m["activityId"] for m in newest]
    cursors = [ids[-3], ids[-WINDOW // 2], start]
    remembered = {}
    for last_event_id in cursors:
        frames, offset = await resume(world.owner, world, last_event_id)
        expected = await json_catch_up(world.owner, world, last_event_id)
        assert expected
        assert as_messages(frames) == expected, last_event_id
        assert offset == {"cursor": ids[-1]}
        remembered[last_event_id] = frames

    # The same resumes on a server that keeps no window: byte for byte the same frames.
    await restart(setup, SYNCSTREAM_RECENT_ACTIVITIES="0")
    for last_event_id, frames in remembered.items():
        assert (await resume(world.owner, world, last_event_id))[0] == frames, last_event_id

    # And after a restart with the window on: read back at start, the same again.
    await restart(setup)
    for last_event_id, frames in remembered.items():
        assert (await resume(world.owner, world, last_event_id))[0] == frames, last_event_id


async def test_a_project_only_member_gets_only_its_project_from_memory(setup: Setup) -> None:
    world = setup.world
    start = await cursor(world.project_member, world)
    created = await write(world, 6)
    in_project = created[0::3]
    # ``both``: an org member (unscoped ones) and a member of the project, not of the other.
    not_other = [c for n, c in enumerate(created) if n % 3 != 1]
    for user, visible in ((world.project_member, in_project), (world.both, not_other)):
        after = await cursor(user, world)  # the newest: resume a few behind it
        everything = await json_catch_up(user, world, start)
        assert [m["entityId"] for m in everything] == visible
        for last_event_id in (start, everything[0]["activityId"]):
            frames, offset = await resume(user, world, last_event_id)
            expected = await json_catch_up(user, world, last_event_id)
            assert as_messages(frames) == expected
            assert {m["entityId"] for m in as_messages(frames)} <= set(visible)
            assert offset["cursor"] in (after, expected[-1]["activityId"] if expected else None)
    # Nothing of the other project, nor unscoped, reaches the project-only member.
    frames, _ = await resume(world.project_member, world, start)
    assert [m["projectId"] for m in as_messages(frames)] == [world.project["id"]] * len(in_project)


async def test_a_resume_is_served_from_memory(setup: Setup) -> None:
    """Proof that the window is what answers: an activity deleted from the file behind
    the server's back (no prune, so no mark) is still sent from memory, while the log
    (the JSON page) no longer has it."""
    if not setup.database_url.startswith("sqlite"):
        pytest.skip("rows are deleted behind the server's back on the SQLite file")
    world = setup.world
    start = await cursor(world.owner, world)
    await write(world, 4)
    before = await json_catch_up(world.owner, world, start)
    gone = before[1]["activityId"]
    path = setup.database_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        assert conn.execute("DELETE FROM activities WHERE id = ?", (int(gone),)).rowcount == 1
    after = await json_catch_up(world.owner, world, start)
    assert [m["activityId"] for m in after] == [m["activityId"] for m in before if m["activityId"] != gone]
    frames, _ = await resume(world.owner, world, start)
    assert as_messages(frames) == before  # the window still holds it


def prune_everything_but_the_newest(database_url: str) -> int:
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    result = run_cli("activities", "prune", "--before", tomorrow, "--database-url", database_url)
    assert result.returncode == 0, result.stderr
    return int(orjson.loads(result.stdout)["prunedThrough"])


async def test_a_pruned_cursor_must_refetch_though_its_activities_are_held(setup: Setup) -> None:
    world = setup.world
    start = await cursor(world.owner, world)
    await write(world, 4)
    messages = await json_catch_up(world.owner, world, start)
    ids = [m["activityId"] for m in messages]
    # Held by the window before the prune: a resume from here is served.
    frames, _ = await resume(world.owner, world, ids[0])
    assert as_messages(frames) == messages[1:]

    pruned = await asyncio.to_thread(prune_everything_but_the_newest, setup.database_url)
    assert int(ids[0]) < pruned
    api = Api(setup.server.url, world.owner.token)
    try:
        for last_event_id in (ids[0], str(pruned - 1)):
            response = await api.request(
                "GET", world.stream_url("live=sse"), headers={"Last-Event-ID": last_event_id}
            )
            assert_problem(response, 409, "must_refetch")
        # At the mark nothing is missing: the resume goes on.
        frames, offset = await resume(world.owner, world, str(pruned))
        assert [m["activityId"] for m in as_messages(frames)] == [i for i in ids if int(i) > pruned]
        assert offset == {"cursor": ids[-1]}
    finally:
        await api.aclose()


async def test_what_was_committed_before_a_resume_is_in_its_catch_up(setup: Setup) -> None:
    """An activity the server's tailer has not routed yet when a client resumes (written by
    another process, its doorbell late; here written to the file behind the server's back,
    with no poll due for a minute) is in the catch-up, before the ``offset`` frame: the
    resume reads the newest committed ID and has the tailer route up to it first."""
    if not setup.database_url.startswith("sqlite"):
        pytest.skip("the row is written behind the server's back on the SQLite file")
    await restart(setup, SYNCSTREAM_RECENT_ACTIVITIES=str(WINDOW), SYNCSTREAM_POLL_SECONDS="60")
    world = setup.world
    created = await write(world, 2)
    messages = await json_catch_up(world.owner, world, await cursor(world.owner, world))
    assert messages == []
    last = (await json_catch_up(world.owner, world, "-1"))[-1]
    assert last["entityId"] == created[-1]
    path = setup.database_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        row = conn.execute(
            "SELECT type, action, entity_type, organization_id, project_id, user_id, changed_keys, tx, data,"
            " created_at FROM activities WHERE id = ?",
            (int(last["activityId"]),),
        ).fetchone()
        inserted = conn.execute(
            "INSERT INTO activities (type, action, entity_type, entity_id, organization_id,"
            " project_id, user_id, changed_keys, tx, data, created_at)"
            " VALUES (?, ?, ?, 'at_behind', ?, ?, ?, ?, ?, ?, ?)",
            row,
        ).lastrowid
    frames, offset = await resume(world.owner, world, last["activityId"])
    assert [m["activityId"] for m in as_messages(frames)] == [str(inserted)]
    assert offset == {"cursor": str(inserted)}
