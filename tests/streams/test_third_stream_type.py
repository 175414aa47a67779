"""A third stream type, added to the built-in server from outside, on the public API only.

Nothing of syncstream is edited: a per-project stream of attachments is one decorated
function, served by a real uvicorn (its default configuration, access log included) on a
real socket; revocation comes with the building blocks.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest
import uvicorn
from fastapi import APIRouter

from harness import Api, Stream, free_port
from syncstream import CallerDep, Settings, StreamSlice, Syncstream
from syncstream.app import create_app

pytestmark = pytest.mark.asyncio(loop_scope="session")


def add_project_stream(sync: Syncstream, router: APIRouter) -> None:
    @sync.stream(
        "/organizations/{org}/projects/{project_id}/stream",
        types={"attachment"},
        name="project",
        router=router,
    )
    async def project_stream(org: str, project_id: str, caller: CallerDep) -> StreamSlice:
        return await sync.organization_slice(caller, org, project_id)


@pytest.fixture
async def project_server(tmp_path: Path) -> AsyncIterator[str]:
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'third.db'}", keepalive_seconds=1))
    extra = APIRouter()
    add_project_stream(app.state.syncstream, extra)
    app.include_router(extra)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port))
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
        await asyncio.sleep(0.01)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    for sub in app.state.runtime.subscribers.get_all():
        sub.close("shutdown")
    await task


async def test_a_third_stream_type_needs_no_core_change(project_server: str) -> None:
    api = Api(project_server)
    owner = (await api.sign_up()).api()
    member = await api.sign_up()
    org = await owner.ok("POST", "/organizations", 201, json={"name": "T", "slug": "third-stream"})
    base = f"/organizations/{org['id']}"
    project = await owner.ok("POST", f"{base}/projects", 201, json={"name": "P"})
    membership = await owner.ok(
        "POST",
        f"{base}/memberships",
        201,
        json={"email": member.email, "role": "member", "projectId": project["id"]},
    )
    early = await owner.ok(
        "POST", f"{base}/attachments", 201, json={"name": "early", "projectId": project["id"]}
    )
    url = f"{base}/projects/{project['id']}/stream?live=sse"
    client = member.api()
    async with Stream(client.client, url, client.headers()) as stream:
        changes, _ = await stream.until_offset()
        assert [orjson.loads(c.data)["entityId"] for c in changes] == [early["id"]]
        await owner.ok("POST", f"{base}/attachments", 201, json={"name": "elsewhere"})
        late = await owner.ok(
            "POST", f"{base}/attachments", 201, json={"name": "late", "projectId": project["id"]}
        )
        event = await stream.next()
        assert event is not None
        assert orjson.loads(event.data)["entityId"] == late["id"]
        await owner.ok("DELETE", f"{base}/memberships/{membership['id']}", 204)
        event = await stream.next()
        assert event is not None
        assert event.event == "error"
        assert orjson.loads(event.data)["type"] == "forbidden"
    await client.ok("GET", f"{base}/projects/{project['id']}/stream", 404)
    await client.aclose()
    await owner.aclose()
    await api.aclose()
