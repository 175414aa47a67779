"""``GET /organizations/{org}/sync/stream`` and the bus listeners that feed it."""

from __future__ import annotations

from typing import cast

from fastapi import APIRouter, Request
from sqlalchemy import Select, and_, bindparam, func, literal, select
from starlette.responses import Response

from syncstream.activities import log
from syncstream.activities.model import Activity
from syncstream.db.schema import Activity as ActivityRow
from syncstream.db.schema import Membership
from syncstream.modules.common import CallerDep, RuntimeDep, load_visible_org
from syncstream.modules.stream_docs import stream_route_docs
from syncstream.modules.streaming import (
    json_page,
    measured,
    open_sse,
    parse_params,
    resolve_offset,
    stream_holders,
)
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
from syncstream.stream.cursor import Resolved, resolve

router = APIRouter(tags=["streams"])

STREAM_DESCRIPTION = """
The organization's changes that you may read. Without `live`, one JSON page of
catch-up; with `live=sse`, a Server-Sent Events stream: every missed change, one
`offset` frame, then live changes and keep-alive pings. `Last-Event-ID` overrides `offset`.
"""


def _memberships_query() -> Select[int, str, str | None, str]:
    """The user's memberships in an org with the log position, as one statement.

    One statement is one snapshot on every database, and one round trip to the
    driver's thread instead of four (BEGIN, two reads, COMMIT); the outer join from a
    one-row select yields the position even without any membership. Built once, with
    bound parameters, so SQLAlchemy does not rebuild and re-key it on every open.
    """
    position = select(func.coalesce(func.max(ActivityRow.id), 0)).scalar_subquery()
    one = select(literal(1).label("one")).subquery()
    mine = and_(Membership.user_id == bindparam("user_id"), Membership.organization_id == bindparam("org_id"))
    return select(position, Membership.id, Membership.project_id, Membership.role).select_from(
        one.outerjoin(Membership, mine)
    )


_MEMBERSHIPS = _memberships_query()


async def _memberships(runtime: Runtime, user_id: str, organization_id: str) -> tuple[dict[str, Grant], int]:
    """The user's memberships in the org and the log position they were read at: later
    membership events apply on top, earlier ones are in it."""
    async with runtime.database.reader.connect() as conn:
        rows = (await conn.execute(_MEMBERSHIPS, {"user_id": user_id, "org_id": organization_id})).all()
    grants = {
        mid: Grant(organization_id, project, cast(Role, role))
        for _, mid, project, role in rows
        if mid is not None
    }
    return grants, int(rows[0][0])


@router.get(
    "/organizations/{org}/sync/stream",
    summary="The organization's sync stream (JSON page or SSE)",
    description=STREAM_DESCRIPTION,
    **stream_route_docs(ORG_SCOPED_TYPES, authenticated=True),
)
async def org_stream(org: str, request: Request, caller: CallerDep, runtime: RuntimeDep) -> Response:
    found = await load_visible_org(runtime, caller, org)  # the org cache: no read on a hit
    params = parse_params(request, ORG_SCOPED_TYPES)
    # A live stream from "now" (the usual) takes "now" from its memberships read, made
    # once registered: the same snapshot, and one read fewer per open.
    now_at_prepare = params.live and params.offset.kind == "now"
    resolved = None if now_at_prepare else await resolve_offset(runtime, params.offset)
    # A JSON page reads the memberships now; a live stream once registered (prepare),
    # as the subscriber that live membership events keep current from then on.
    memberships = None if params.live else (await _memberships(runtime, caller.user_id, found.id))[0]
    sub = OrgStreamSubscriber(
        user_id=caller.user_id,
        session_id=caller.session_id,
        organization_id=found.id,
        system_admin=caller.system_admin,
        memberships=memberships,
        entity_types=params.entity_types,
        cursor=0 if resolved is None else resolved.after,  # moved by prepare for "now"
        max_queued=runtime.settings.slow_consumer_messages,
    )
    # An open stream is one use of its session: it ends when the session would, unused.
    sub.expires_at = runtime.sessions.expires_at(caller)

    async def read_after(after: int, limit: int, max_bytes: int) -> list[Activity]:
        if sub.scope is None:
            return []
        async with runtime.database.reader.connect() as conn:
            return await log.read_after(
                conn,
                after,
                limit=limit,
                max_bytes=max_bytes,
                organization_id=found.id,
                entity_types=sub.entity_types,
                scope=sub.scope,
            )

    def accept(activity: Activity) -> bool:
        return should_receive_org_event(sub, activity)

    async def reload_memberships() -> Resolved | None:
        # Registered by now: every membership event after this read reaches the
        # subscriber, and the version makes it skip those the read already contains.
        # Nothing is live before catch-up ends, so moving the cursor here drops only
        # held deliveries at or below "now".
        grants, position = await _memberships(runtime, caller.user_id, found.id)
        now = resolve(params.offset, newest=position, pruned_through=0) if now_at_prepare else None
        if now is not None:
            sub.cursor = now.after
        sub.reset_memberships(grants, position)
        if sub.scope is None:
            forbid(sub)
        return now

    if not params.live:
        assert resolved is not None  # only a live stream resolves "now" late
        return await json_page(runtime, read_after, accept, resolved, params.limit)
    return open_sse(
        runtime,
        sub,
        stream="org",
        read_after=read_after,
        accept=accept,
        resolved=resolved,
        prepare=reload_memberships,
        holders=stream_holders(request, caller.user_id),
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
