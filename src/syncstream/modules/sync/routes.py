"""``GET /organizations/{org}/sync/stream`` and the bus listeners that feed it."""

from __future__ import annotations

from typing import cast

from fastapi import APIRouter, Request
from sqlalchemy import select
from starlette.responses import Response

from syncstream.activities import log
from syncstream.activities.model import Activity
from syncstream.db.schema import Membership
from syncstream.modules.common import CallerDep, RuntimeDep, visible_org
from syncstream.modules.streaming import json_page, measured, open_sse, parse_params, resolve_offset
from syncstream.modules.sync.stream import (
    OrgStreamSubscriber,
    apply_membership_change,
    end_organization_streams,
    end_session_streams,
    forbid,
    route_to_org_subscribers,
    should_receive_org_event,
)
from syncstream.permissions import ORG_SCOPED_TYPES, Grant, Role
from syncstream.runtime import Runtime

router = APIRouter(tags=["streams"])

STREAM_DESCRIPTION = """
The organization's changes that you may read. Without `live`, one JSON page of
catch-up; with `live=sse`, a Server-Sent Events stream: every missed change, one
`offset` frame, then live changes and keep-alive pings. `Last-Event-ID` overrides `offset`.
"""


async def _memberships(runtime: Runtime, user_id: str, organization_id: str) -> tuple[dict[str, Grant], int]:
    """The user's memberships in the org and the log position they were read at, in one
    read transaction: later membership events apply on top, earlier ones are in it."""
    async with runtime.database.reader.connect() as conn, conn.begin():
        position = await log.newest_id(conn)
        rows = await conn.execute(
            select(Membership.id, Membership.project_id, Membership.role).where(
                Membership.user_id == user_id, Membership.organization_id == organization_id
            )
        )
        grants = {mid: Grant(organization_id, project, cast(Role, role)) for mid, project, role in rows}
    return grants, position


@router.get(
    "/organizations/{org}/sync/stream",
    summary="The organization's sync stream (JSON page or SSE)",
    description=STREAM_DESCRIPTION,
    responses={200: {"content": {"application/json": {}, "text/event-stream": {}}}},
)
async def org_stream(org: str, request: Request, caller: CallerDep, runtime: RuntimeDep) -> Response:
    async with runtime.database.reader.connect() as conn:
        found = await visible_org(conn, caller, org)
    params = parse_params(request, ORG_SCOPED_TYPES)
    resolved = await resolve_offset(runtime, params.offset)
    memberships, _ = await _memberships(runtime, caller.user_id, found.id)
    sub = OrgStreamSubscriber(
        user_id=caller.user_id,
        session_id=caller.session_id,
        organization_id=found.id,
        system_admin=caller.system_admin,
        memberships=memberships,
        entity_types=params.entity_types,
        cursor=resolved.after,
        max_queued=runtime.settings.slow_consumer_messages,
    )

    async def read_after(after: int, limit: int) -> list[Activity]:
        if sub.scope is None:
            return []
        async with runtime.database.reader.connect() as conn:
            return await log.read_after(
                conn,
                after,
                limit=limit,
                organization_id=found.id,
                entity_types=sub.entity_types,
                scope=sub.scope,
            )

    def accept(activity: Activity) -> bool:
        return should_receive_org_event(sub, activity)

    async def reload_memberships() -> None:
        # Registered by now: every membership event after this read reaches the
        # subscriber, and the version makes it skip those the read already contains.
        sub.reset_memberships(*await _memberships(runtime, caller.user_id, found.id))
        if sub.scope is None:
            forbid(sub)

    if not params.live:
        return await json_page(read_after, accept, resolved, params.limit)
    return open_sse(
        runtime,
        sub,
        stream="org",
        read_after=read_after,
        accept=accept,
        resolved=resolved,
        prepare=reload_memberships,
    )


def install(runtime: Runtime) -> None:
    """Wire the org stream to the activity bus."""
    manager = runtime.subscribers
    route = measured(runtime, route_to_org_subscribers)
    for event in ("attachment.created", "attachment.updated", "attachment.deleted"):
        runtime.bus.on(event, route)
    for event in ("membership.created", "membership.updated", "membership.deleted"):
        runtime.bus.on(event, lambda a: apply_membership_change(manager, a))
    runtime.bus.on("organization.deleted", lambda a: end_organization_streams(manager, a))
    runtime.bus.on("session.revoked", lambda a: end_session_streams(manager, a))
