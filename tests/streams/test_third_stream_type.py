"""A third stream type, added from outside the core in the five steps of docs/streams.md.

Nothing in ``syncstream.stream``, ``syncstream.activities`` or the existing modules is
touched: the stream below is built only from their public pieces, served by a real
uvicorn on a real socket.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest
import uvicorn
from fastapi import APIRouter, Request
from starlette.responses import Response

from harness import Api, Stream, free_port
from syncstream.activities import log
from syncstream.activities.model import Activity, render_message
from syncstream.app import create_app
from syncstream.config import Settings
from syncstream.modules.common import CallerDep, RuntimeDep, visible_org
from syncstream.modules.streaming import json_page, open_sse, parse_params, resolve_offset
from syncstream.permissions import Entity, is_allowed
from syncstream.runtime import Runtime
from syncstream.stream.helpers import change_frame, write_change
from syncstream.stream.manager import SubscriberManager
from syncstream.stream.subscriber import Subscriber

pytestmark = pytest.mark.asyncio(loop_scope="session")


# 1. The subscriber: the state the filter needs.
class ProjectStreamSubscriber(Subscriber):
    def __init__(self, *, organization_id: str, project_id: str, cursor: int, max_queued: int) -> None:
        super().__init__(index_key=project_index_key(project_id), cursor=cursor, max_queued=max_queued)
        self.organization_id = organization_id
        self.project_id = project_id


# 2. The index key: routing finds candidates in O(1).
def project_index_key(project_id: str) -> str:
    return f"project:{project_id}"


# 3. The pure filter.
def should_receive_project_event(sub: ProjectStreamSubscriber, activity: Activity) -> bool:
    return activity.entity_type == "attachment" and activity.project_id == sub.project_id


# 4. Route: indexed lookup, filter, send (one encoding for every recipient).
def send_to_project_subscriber(sub: ProjectStreamSubscriber, activity_id: int, frame: bytes) -> None:
    write_change(sub, activity_id, frame)


def route_to_project_subscribers(manager: SubscriberManager[Subscriber], activity: Activity) -> int:
    if activity.project_id is None:
        return 0
    frame = change_frame(activity.id, render_message(activity))
    sent = 0
    for sub in manager.get_by_index(project_index_key(activity.project_id)):
        if isinstance(sub, ProjectStreamSubscriber) and should_receive_project_event(sub, activity):
            send_to_project_subscriber(sub, activity.id, frame)
            sent += 1
    return sent


def install(runtime: Runtime) -> None:
    for event in ("attachment.created", "attachment.updated", "attachment.deleted"):
        runtime.bus.on(event, lambda a: route_to_project_subscribers(runtime.subscribers, a))


# 5. The route handler.
router = APIRouter()


@router.get("/organizations/{org}/projects/{project_id}/stream")
async def project_stream(
    org: str, project_id: str, request: Request, caller: CallerDep, runtime: RuntimeDep
) -> Response:
    async with runtime.database.reader.connect() as conn:
        found = await visible_org(conn, caller, org)
    if not is_allowed(caller.access, "read", Entity("attachment", found.id, project_id)):
        from syncstream import problems

        raise problems.not_found("project not found")
    params = parse_params(request, {"attachment"})
    resolved = await resolve_offset(runtime, params.offset)
    sub = ProjectStreamSubscriber(
        organization_id=found.id,
        project_id=project_id,
        cursor=resolved.after,
        max_queued=runtime.settings.slow_consumer_messages,
    )

    async def read_after(after: int, limit: int, max_bytes: int) -> list[Activity]:
        async with runtime.database.reader.connect() as conn:
            return await log.read_after(
                conn,
                after,
                limit=limit,
                max_bytes=max_bytes,
                organization_id=found.id,
                entity_types={"attachment"},
            )

    def accept(activity: Activity) -> bool:
        return should_receive_project_event(sub, activity)

    if not params.live:
        return await json_page(read_after, accept, resolved, params.limit)
    return open_sse(runtime, sub, stream="project", read_after=read_after, accept=accept, resolved=resolved)


@pytest.fixture
async def project_server(tmp_path: Path) -> AsyncIterator[str]:
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'third.db'}", keepalive_seconds=1))
    app.include_router(router)
    install(app.state.runtime)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
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
    org = await owner.ok("POST", "/organizations", 201, json={"name": "T", "slug": "third-stream"})
    base = f"/organizations/{org['id']}"
    project = await owner.ok("POST", f"{base}/projects", 201, json={"name": "P"})
    early = await owner.ok(
        "POST", f"{base}/attachments", 201, json={"name": "early", "projectId": project["id"]}
    )
    url = f"{base}/projects/{project['id']}/stream?live=sse"
    async with Stream(owner.client, url, owner.headers()) as stream:
        changes, _ = await stream.until_offset()
        assert [orjson.loads(c.data)["entityId"] for c in changes] == [early["id"]]
        await owner.ok("POST", f"{base}/attachments", 201, json={"name": "elsewhere"})
        late = await owner.ok(
            "POST", f"{base}/attachments", 201, json={"name": "late", "projectId": project["id"]}
        )
        event = await stream.next()
        assert event is not None
        assert orjson.loads(event.data)["entityId"] == late["id"]
    await owner.aclose()
    await api.aclose()
