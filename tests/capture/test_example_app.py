"""Capture in a team's own application (examples/tasks, ORM writes through ``sync.session``),
served by uvicorn with ``SYNCSTREAM_CAPTURE=on`` on both databases: its own writes are
recorded once with their ``tx``, and rows a plain connection writes to its ``tasks`` table
reach the project stream in the declared shape (a boolean included)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import orjson
import pytest

from capture.plain import Plain
from capture.test_server import change
from databases import create_postgres_database, drop_postgres_database
from example_apps.conftest import AppServer
from example_apps.test_tasks import add_task, new_project
from harness import Api, Stream, unique

pytestmark = pytest.mark.asyncio(loop_scope="session")

TASK = (
    "INSERT INTO tasks (id, organization_id, project_id, board_id, title, done, revision) "
    "VALUES (?, ?, ?, ?, ?, ?, 0)"
)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def capturing_tasks(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AppServer]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('tasks-capture') / 'tasks.db'}"
    else:
        url = asyncio.run(create_postgres_database())
    server = AppServer(
        "examples.tasks.app:app", url, {"SYNCSTREAM_CAPTURE": "on", "SYNCSTREAM_POLL_SECONDS": "0.2"}
    )
    server.start()
    yield server
    server.stop()
    if request.param == "postgresql":
        asyncio.run(drop_postgres_database(url))


@pytest.fixture
async def api(capturing_tasks: AppServer) -> AsyncIterator[Api]:
    client = Api(capturing_tasks.url)
    yield client
    await client.aclose()


async def test_the_apps_writes_once_and_a_plain_connections_in_the_declared_shape(
    capturing_tasks: AppServer, api: Api
) -> None:
    project = await new_project(api)
    client = project.owner.api()
    plain = Plain(capturing_tasks.database_url)
    url = project.stream + "?live=sse&offset=now"
    async with Stream(client.client, url, client.headers()) as stream:
        await stream.until_offset()
        tx = {"transactionId": unique("t"), "sourceId": "tab-1"}
        ours = await add_task(client, project, "through the app", tx=tx)
        theirs = unique("tsk_")
        await plain.run((TASK, (theirs, project.org, project.id, project.board, "from psql", True)))
        await plain.run(("UPDATE tasks SET revision = revision + 1 WHERE id = ?", (theirs,)))  # untracked
        await plain.run(("UPDATE tasks SET title = ? WHERE id = ?", ("renamed", theirs)))
        await client.ok("PATCH", f"{project.base}/tasks/{ours['id']}", json={"done": True})
        live = [change(await stream.next()) for _ in range(4)]
    assert [(m["action"], m["entityId"]) for m in live] == [
        ("create", ours["id"]),
        ("create", theirs),
        ("update", theirs),
        ("update", ours["id"]),
    ]
    assert live[0]["tx"] == {**tx, "changedField": None}
    assert live[0]["data"] == ours  # the app's own answer is the shape
    assert live[1]["data"] == {"id": theirs, "boardId": project.board, "title": "from psql", "done": True}
    assert (live[2]["changedKeys"], live[2]["data"]["title"], live[2]["tx"]) == (["title"], "renamed", None)
    assert live[3]["changedKeys"] == ["done"]
    page = await client.ok("GET", f"{project.stream}?offset={int(live[0]['activityId']) - 1}")
    assert [orjson.loads(orjson.dumps(m)) for m in page["activities"]] == live
    await client.aclose()
