"""examples/tasks, a team's own app on syncstream's public API, over real sockets on both databases:
catch-up then live then resume, revocation mid-stream, exactly once under concurrent writers,
the team's own permission rule, and what the automatic (ORM) recording guarantees."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import orjson
import pytest

from harness import Api, Stream, User, unique

pytestmark = pytest.mark.asyncio(loop_scope="session")


@dataclass
class Project:
    owner: User
    org: str
    id: str
    board: str

    @property
    def base(self) -> str:
        return f"/organizations/{self.org}/projects/{self.id}"

    @property
    def stream(self) -> str:
        return f"{self.base}/stream"


async def new_project(api: Api) -> Project:
    owner = await api.sign_up()
    client = owner.api()
    org = await client.ok("POST", "/organizations", 201, json={"name": "Acme", "slug": unique("acme-")})
    project = await client.ok("POST", f"/organizations/{org['id']}/projects", 201, json={"name": "P"})
    board = await client.ok(
        "POST", f"/organizations/{org['id']}/projects/{project['id']}/boards", 201, json={"name": "B"}
    )
    await client.aclose()
    return Project(owner, org["id"], project["id"], board["id"])


async def add_task(client: Api, project: Project, title: str, **extra: Any) -> dict[str, Any]:
    body = {"boardId": project.board, "title": title, **extra}
    created: dict[str, Any] = await client.ok("POST", f"{project.base}/tasks", 201, json=body)
    return created


def message(event: Any) -> dict[str, Any]:
    assert event is not None, "the stream ended"
    assert event.event == "change", (event.event, event.data)
    decoded: dict[str, Any] = orjson.loads(event.data)
    return decoded


async def test_catch_up_then_live_then_resume(tasks_api: Api) -> None:
    project = await new_project(tasks_api)
    client = project.owner.api()
    early = [await add_task(client, project, f"early {i}") for i in range(3)]
    async with Stream(client.client, project.stream + "?live=sse", client.headers()) as stream:
        changes, offset = await stream.until_offset()
        caught = [message(c) for c in changes]
        assert [m["entityType"] for m in caught] == ["board", "task", "task", "task"]
        assert [m["entityId"] for m in caught[1:]] == [t["id"] for t in early]
        assert orjson.loads(offset.data)["cursor"] == caught[-1]["activityId"]
        tx = {"transactionId": unique("t"), "sourceId": "tab-1", "changedField": "done"}
        live = await add_task(client, project, "live")
        assert message(await stream.next())["entityId"] == live["id"]
        await client.ok("PATCH", f"{project.base}/tasks/{live['id']}", json={"done": True, "tx": tx})
        update = message(await stream.next())
        assert update["action"] == "update"
        assert update["changedKeys"] == ["done"]
        assert update["tx"] == tx
        assert update["data"]["done"] is True
        last = update["activityId"]
    missed = [await add_task(client, project, f"missed {i}") for i in range(2)]
    resume = {**client.headers(), "Last-Event-ID": last}
    async with Stream(client.client, project.stream + "?live=sse&offset=-1", resume) as stream:
        changes, _ = await stream.until_offset()
        assert [message(c)["entityId"] for c in changes] == [t["id"] for t in missed]
    # The organization's own stream carries the declared types too, with the same bytes.
    page = await client.ok("GET", f"/organizations/{project.org}/sync/stream?offset={last}")
    assert [m["entityId"] for m in page["activities"]] == [t["id"] for t in missed]
    await client.aclose()


async def test_an_update_that_changes_nothing_records_nothing_and_a_repeated_create_once(
    tasks_api: Api,
) -> None:
    project = await new_project(tasks_api)
    client = project.owner.api()
    tx = {"transactionId": unique("t"), "sourceId": "tab-1"}
    first = await add_task(client, project, "once", tx=tx)
    again = await client.ok(
        "POST", f"{project.base}/tasks", 200, json={"boardId": project.board, "title": "once", "tx": tx}
    )
    assert again["id"] == first["id"]
    await client.ok("PATCH", f"{project.base}/tasks/{first['id']}", json={"title": "once"})  # same value
    await client.ok("PATCH", f"{project.base}/tasks/{first['id']}", json={"title": "twice"})
    page = await client.ok("GET", f"{project.stream}?offset=-1")
    tasks = [m for m in page["activities"] if m["entityType"] == "task"]
    assert [(m["action"], m["changedKeys"]) for m in tasks] == [("create", None), ("update", ["title"])]
    assert tasks[0]["tx"] == {**tx, "changedField": None}
    await client.ok("DELETE", f"{project.base}/tasks/{first['id']}", 204)
    page = await client.ok("GET", f"{project.stream}?offset={tasks[-1]['activityId']}")
    assert [(m["action"], m["data"]["title"]) for m in page["activities"]] == [("delete", "twice")]
    await client.aclose()


async def invite(project: Project, email: str, project_id: str | None) -> dict[str, Any]:
    client = project.owner.api()
    body = {"email": email, "role": "member", "projectId": project_id}
    membership: dict[str, Any] = await client.ok(
        "POST", f"/organizations/{project.org}/memberships", 201, json=body
    )
    await client.aclose()
    return membership


async def test_revocation_mid_stream_ends_the_project_stream(tasks_api: Api) -> None:
    project = await new_project(tasks_api)
    owner = project.owner.api()
    member = await tasks_api.sign_up()
    membership = await invite(project, member.email, project.id)
    client = member.api()
    async with Stream(client.client, project.stream + "?live=sse&offset=now", client.headers()) as stream:
        await stream.until_offset()
        seen = await add_task(owner, project, "seen")
        assert message(await stream.next())["entityId"] == seen["id"]
        await owner.ok("DELETE", f"/organizations/{project.org}/memberships/{membership['id']}", 204)
        await add_task(owner, project, "after the revocation")
        event = await stream.next()
        assert event is not None
        assert event.event == "error"
        assert orjson.loads(event.data)["type"] == "forbidden"
        assert await stream.next() is None  # closed, and nothing after the revocation leaked
    await client.ok("GET", project.stream, 404)
    await owner.aclose()
    await client.aclose()


async def test_sign_out_ends_the_stream_and_the_teams_rule_hides_internal_comments(tasks_api: Api) -> None:
    project = await new_project(tasks_api)
    owner = project.owner.api()
    member = await tasks_api.sign_up()
    await invite(project, member.email, project.id)
    task = await add_task(owner, project, "discussed")
    client = member.api()
    comments = f"{project.base}/tasks/{task['id']}/comments"
    async with (
        Stream(client.client, project.stream + "?live=sse&offset=now", client.headers()) as mine,
        Stream(owner.client, project.stream + "?live=sse&offset=now", owner.headers()) as admins,
    ):
        await mine.until_offset()
        await admins.until_offset()
        internal = await owner.ok("POST", comments, 201, json={"body": "admins only", "internal": True})
        visible = await owner.ok("POST", comments, 201, json={"body": "for everyone"})
        assert message(await admins.next())["entityId"] == internal["id"]
        assert message(await admins.next())["entityId"] == visible["id"]
        assert message(await mine.next())["entityId"] == visible["id"]  # the internal one skipped
        await client.ok("POST", "/auth/sign-out", 204)
        event = await mine.next()
        assert event is not None
        assert event.event == "error"
        assert await mine.next() is None
    page = await owner.ok("GET", f"{project.stream}?offset=-1&entityTypes=comment")
    assert len(page["activities"]) == 2
    await owner.aclose()
    await client.aclose()


WRITERS = 4
EACH = 15


async def test_exactly_once_in_order_under_concurrent_writers(tasks_api: Api) -> None:
    project = await new_project(tasks_api)
    owner = project.owner.api()
    writers = [owner]
    for _ in range(WRITERS - 1):
        user = await tasks_api.sign_up()
        await invite(project, user.email, project.id)
        writers.append(user.api())

    async def write(client: Api, n: int) -> list[str]:
        return [(await add_task(client, project, f"w{n}-{i}"))["id"] for i in range(EACH)]

    async def collect(stream: Stream, expected: int) -> list[dict[str, Any]]:
        got: list[dict[str, Any]] = []
        while len([m for m in got if m["entityType"] == "task"]) < expected:
            event = await stream.next()
            if event is not None and event.event == "offset":
                continue
            got.append(message(event))
        return got

    url = project.stream + "?live=sse&offset=-1"
    async with Stream(owner.client, url, owner.headers()) as early:
        started = asyncio.create_task(asyncio.wait_for(collect(early, WRITERS * EACH), 60))
        work = [asyncio.create_task(write(c, n)) for n, c in enumerate(writers)]
        await asyncio.wait_for(asyncio.gather(*work[:1]), 60)  # some written before the late reader
        async with Stream(owner.client, url, owner.headers()) as late:  # joins mid-way, catches up
            written = {t for w in await asyncio.wait_for(asyncio.gather(*work), 60) for t in w}
            for got in (await started, await asyncio.wait_for(collect(late, WRITERS * EACH), 60)):
                ids = [int(m["activityId"]) for m in got]
                assert ids == sorted(set(ids)), "out of order or repeated"
                assert {m["entityId"] for m in got if m["entityType"] == "task"} == written
    for client in writers:
        await client.aclose()
