"""Opening a stream of one slice of the log: public, an organization, or one project.

A stream type is a route that decides *which* slice a request may open (authenticate,
authorise, 404) and returns a :class:`StreamSlice`; :func:`open_slice` does the rest,
the same way for every type: parameters (400), cursor (409 ``must_refetch``), JSON
page or SSE, registration before catch-up, the membership snapshot loaded once
registered with its events held meanwhile, catch-up filtered in SQL by organization,
types and readable projects, and the lifecycle that ends or narrows the stream.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable, Collection, Iterable
from dataclasses import dataclass
from typing import Annotated, Any, get_args, get_origin

from fastapi import params
from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.convertors import StringConvertor
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import compile_path

from syncstream import problems
from syncstream._access import MemberSubscriber, Permission, PublicSubscriber
from syncstream.activities import log
from syncstream.activities.model import Activity
from syncstream.auth.sessions import Caller, load_user_memberships
from syncstream.db.schema import Project
from syncstream.modules.common import current_caller, load_visible_org
from syncstream.modules.hot import HotStream
from syncstream.modules.streaming import json_page, open_sse, parse_params, resolve_offset, stream_holders
from syncstream.permissions import Grant, read_scope
from syncstream.runtime import Runtime
from syncstream.stream.cursor import Resolved, resolve

#: ``open_where(request, endpoint_arguments)``: a stream route's work (its endpoint's).
OpenWhere = Callable[[Request, dict[str, Any]], Awaitable[Response]]


def hot_stream(path: str, parameters: Iterable[inspect.Parameter], open_where: OpenWhere) -> HotStream | None:
    """The hot path (modules/hot.py) of a stream route, if its endpoint takes nothing but
    plain path parameters and the caller found by :func:`current_caller`: what the
    framework would then do for it (route, solve those two) is done there directly.
    Any other endpoint (a dependency of the application's, a query parameter) keeps the
    framework's path. ``parameters`` carry their resolved annotations."""
    path_params = compile_path(path)[2]
    caller_name = None
    for parameter in parameters:
        hint = parameter.annotation
        if _is_current_caller(hint, parameter.default):
            caller_name = parameter.name
        elif not (
            hint is str
            and isinstance(path_params.get(parameter.name), StringConvertor)
            and parameter.default is inspect.Parameter.empty
        ):
            return None
    if caller_name is None:
        return None
    name = caller_name

    async def open_stream(request: Request, caller: Caller, params: dict[str, str]) -> Response:
        return await open_where(request, {**params, name: caller})

    return HotStream(path, open_stream)


def _is_current_caller(hint: Any, default: Any) -> bool:
    markers = [default]
    if get_origin(hint) is Annotated:
        hint, *extra = get_args(hint)
        markers.extend(extra)
    return (
        isinstance(hint, type)
        and issubclass(hint, Caller)
        and any(isinstance(m, params.Depends) and m.dependency is current_caller for m in markers)
    )


@dataclass(frozen=True, slots=True)
class StreamSlice:
    """The part of the log one stream request may open. Made by
    :meth:`StreamSlice.public` or ``Syncstream.organization_slice`` (which checks access)."""

    organization_id: str | None
    project_id: str | None
    caller: Caller | None

    @classmethod
    def public(cls) -> StreamSlice:
        """Every public entity type: anyone may open it."""
        return cls(None, None, None)


class StreamPaths:
    """The explicit stream marker: the path templates of the stream routes, which
    ``StreamMiddleware`` gates (at most so many opening at once) and runs outside the
    framework's stack."""

    __slots__ = ("_patterns",)

    def __init__(self) -> None:
        self._patterns: list[re.Pattern[str]] = []

    def add(self, path: str) -> None:
        self._patterns.append(compile_path(path)[0])

    def __call__(self, path: str) -> bool:
        return any(p.match(path) for p in self._patterns)


_PROJECT_OWNER = select(Project.organization_id).where(Project.id == bindparam("id"))


async def load_memberships(
    runtime: Runtime, user_id: str, organization_id: str
) -> tuple[dict[str, Grant], int]:
    """The user's memberships in the org and the log position they were read at: later
    membership events apply on top, earlier ones are in it. (The same one-statement
    snapshot authentication reads, narrowed to the org.)"""
    async with runtime.database.reader.connect() as conn:
        found = await load_user_memberships(conn, user_id)
    return found.in_organization(organization_id), found.as_of


async def organization_slice(
    runtime: Runtime, caller: Caller, organization: str, project_id: str | None = None
) -> StreamSlice:
    """The slice of an organization (ID or slug) or of one of its projects, if ``caller``
    may read it; 404 otherwise (the same as for one that does not exist)."""
    found = await load_visible_org(runtime, caller, organization)
    if project_id is not None:
        async with runtime.database.reader.connect() as conn:
            owner = await conn.scalar(_PROJECT_OWNER, {"id": project_id})
        scope = read_scope(caller.access, found.id)
        if owner != found.id or scope is None or not scope.allows(project_id):
            raise problems.not_found(f"project {project_id!r} not found")
    return StreamSlice(found.id, project_id, caller)


async def open_slice(
    runtime: Runtime,
    request: Request,
    where: StreamSlice,
    *,
    types: Collection[str],
    stream: str,
    permission: Permission | None = None,
) -> Response:
    """The stream response of ``where``: one JSON page, or SSE with ``live=sse``."""
    if where.organization_id is None:
        return await _open_public(runtime, request, frozenset(types), stream)
    if where.caller is None:
        raise problems.unauthorized()
    return await _open_member(runtime, request, where, frozenset(types), stream, permission)


async def _open_public(runtime: Runtime, request: Request, types: frozenset[str], stream: str) -> Response:
    params = parse_params(request, types)
    resolved = await resolve_offset(runtime, params.offset)
    sub = PublicSubscriber(
        entity_types=params.entity_types if params.entity_types is not None else types,
        cursor=resolved.after,
        max_queued=runtime.settings.slow_consumer_messages,
    )

    async def read_after(conn: AsyncConnection, after: int, limit: int, max_bytes: int) -> list[Activity]:
        return await log.read_after(
            conn, after, limit=limit, max_bytes=max_bytes, entity_types=sub.entity_types
        )

    if not params.live:
        return await json_page(runtime, read_after, sub.accepts, resolved, params.limit)
    return open_sse(
        runtime,
        sub,
        stream=stream,
        read_after=read_after,
        accept=sub.accepts,
        resolved=resolved,
        holders=stream_holders(request),
    )


async def _open_member(
    runtime: Runtime,
    request: Request,
    where: StreamSlice,
    types: frozenset[str],
    stream: str,
    permission: Permission | None,
) -> Response:
    caller = where.caller
    organization_id = where.organization_id
    assert caller is not None
    assert organization_id is not None
    params = parse_params(request, types)
    # A live stream from "now" (the usual) takes "now" from its memberships read, made
    # once registered: the same snapshot, and one read fewer per open.
    now_at_prepare = params.live and params.offset.kind == "now"
    resolved = None if now_at_prepare else await resolve_offset(runtime, params.offset)
    # A JSON page reads the memberships now; a live stream once registered (prepare),
    # as the subscriber that live membership events keep current from then on.
    memberships = None
    if not params.live:
        memberships = (await load_memberships(runtime, caller.user_id, organization_id))[0]
    sub = MemberSubscriber(
        user_id=caller.user_id,
        session_id=caller.session_id,
        organization_id=organization_id,
        project_id=where.project_id,
        system_admin=caller.system_admin,
        memberships=memberships,
        entity_types=params.entity_types if params.entity_types is not None else types,
        cursor=0 if resolved is None else resolved.after,  # moved by prepare for "now"
        max_queued=runtime.settings.slow_consumer_messages,
        permission=permission,
    )
    # An open stream is one use of its session: it ends when the session would, unused.
    sub.expires_at = runtime.sessions.expires_at(caller)

    async def read_after(conn: AsyncConnection, after: int, limit: int, max_bytes: int) -> list[Activity]:
        if sub.scope is None:
            return []
        return await log.read_after(
            conn,
            after,
            limit=limit,
            max_bytes=max_bytes,
            organization_id=organization_id,
            entity_types=sub.entity_types,
            scope=sub.scope,
        )

    async def reload_memberships() -> Resolved | None:
        # Registered by now: every membership event after this read reaches the
        # subscriber, and the version makes it skip those the read already contains.
        # Nothing is live before catch-up ends, so moving the cursor here drops only
        # held deliveries at or below "now".
        known = caller.memberships
        if known is not None and known.generation == runtime.callers.generation:
            # The caller's own snapshot is still whole (see auth.sessions.Memberships):
            # no read. "Now" is then where this process's tailer is (or the snapshot, if
            # newer): everything after it is still to be routed, so it arrives live.
            grants, position = known.in_organization(organization_id), known.as_of
            newest = max(position, runtime.tailer.position)
        else:
            grants, position = await load_memberships(runtime, caller.user_id, organization_id)
            newest = position
        now = resolve(params.offset, newest=newest, pruned_through=0) if now_at_prepare else None
        if now is not None:
            sub.cursor = now.after
        sub.reset_memberships(grants, position)
        if sub.scope is None:
            sub.forbid()
        return now

    if not params.live:
        assert resolved is not None  # only a live stream resolves "now" late
        return await json_page(runtime, read_after, sub.accepts, resolved, params.limit)
    return open_sse(
        runtime,
        sub,
        stream=stream,
        read_after=read_after,
        accept=sub.accepts,
        resolved=resolved,
        prepare=reload_memberships,
        holders=stream_holders(request, caller.user_id),
    )
