"""What every module needs: the runtime, the caller, JSON responses and org lookup."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

import orjson
from fastapi import Depends, Request
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel
from sqlalchemy import ColumnElement, false, or_, select, true
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from starlette.responses import Response

from syncstream import problems
from syncstream.activities import log
from syncstream.activities.model import NewActivity
from syncstream.auth.sessions import SESSION_COOKIE, Caller, authenticate, session_last_used, token_key
from syncstream.db.schema import Organization
from syncstream.db.types import iso_ms
from syncstream.db.views import OrgInfo
from syncstream.permissions import ReadScope, is_member
from syncstream.runtime import Runtime


class CamelModel(BaseModel):
    """Request bodies: camelCase on the wire, unknown fields refused (a typo is an error),
    and every value of the JSON type the OpenAPI document publishes: strict mode, so
    ``"size": "12"`` or ``"size": true`` is a 422 rather than a silently coerced 12 or 1."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", strict=True)


class TxIn(CamelModel):
    """Lets a client recognise its own writes in the stream, and replay a create safely."""

    transaction_id: str = Field(min_length=1, max_length=64)
    source_id: str = Field(min_length=1, max_length=64)
    changed_field: str | None = Field(default=None, max_length=200)

    def wire(self) -> dict[str, Any]:
        return {
            "transactionId": self.transaction_id,
            "sourceId": self.source_id,
            "changedField": self.changed_field,
        }


def json_response(data: Any, status_code: int = 200) -> Response:
    if status_code == 204:
        return Response(status_code=204)
    return Response(orjson.dumps(data), status_code=status_code, media_type="application/json")


async def get_runtime(request: Request) -> Runtime:
    # async on purpose: FastAPI runs a plain ``def`` dependency in a worker thread.
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, token = header.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
        return None
    return request.cookies.get(SESSION_COOKIE)


async def reader(runtime: RuntimeDep) -> AsyncIterator[AsyncConnection]:
    async with runtime.database.reader.connect() as conn:
        yield conn


ReaderDep = Annotated[AsyncConnection, Depends(reader)]


async def current_caller(request: Request) -> Caller:
    """The caller behind the request's bearer token or session cookie; 401 otherwise.

    The operations that depend on this are marked in the OpenAPI document by
    ``security_docs.py``, not by FastAPI's security-scheme dependencies: those cost
    a fifth of the framework's per-request work and decide nothing here. For the same
    reason the runtime is taken from the app, not through a dependency of its own.
    """
    runtime: Runtime = request.app.state.runtime
    return await caller_of(runtime, bearer_token(request))


async def caller_of(runtime: Runtime, token: str | None) -> Caller:
    """:func:`current_caller` for the request's credentials (``token``), whichever path
    the request took (the framework's, or a hot route's: ``modules/hot.py``)."""
    if token is None:
        raise problems.unauthorized("Credentials are required: a bearer token or the session cookie.")
    key = token_key(token)
    if key is None:
        raise problems.invalid_token()

    loaded = False

    async def load() -> Caller | None:
        nonlocal loaded
        loaded = True
        generation = runtime.callers.generation
        async with runtime.database.reader.connect() as conn:
            return await authenticate(conn, key, generation)

    caller = await runtime.callers.get_or_load(key, load)
    if caller is None:
        raise problems.invalid_token()
    sessions = runtime.sessions
    if not loaded and runtime.doorbell.crosses_processes:
        await _revalidate(runtime, caller)
    now = time.time()
    if sessions.expired(caller, now):
        raise problems.invalid_token("This session has expired; sign in again.")
    sessions.touch(caller, now)
    return caller


async def _revalidate(runtime: Runtime, caller: Caller) -> None:
    """Another process may have ended the session a moment ago, and its activity may not
    have reached this one yet (its doorbell is late, or the bus is down and the poll has
    not come round): so with several processes, a cached caller's session row is read
    again on every request. One primary-key read, and revocation is effective in every
    process before the sign-out answers. (One process clears the cache as it commits.)"""
    async with runtime.database.reader.connect() as conn:
        last_used = await session_last_used(conn, caller.session_id)
    if last_used is None:
        raise problems.invalid_token()
    runtime.sessions.seen(caller.session_id, last_used)


CallerDep = Annotated[Caller, Depends(current_caller)]


def org_json(org: OrgInfo) -> dict[str, Any]:
    return {"id": org.id, "name": org.name, "slug": org.slug, "createdAt": iso_ms(org.created_at)}


async def find_org(conn: AsyncConnection, id_or_slug: str) -> OrgInfo | None:
    t = Organization.__table__
    row = (
        await conn.execute(
            select(t.c.id, t.c.name, t.c.slug, t.c.created_at).where(
                or_(t.c.id == id_or_slug, t.c.slug == id_or_slug)
            )
        )
    ).first()
    return None if row is None else OrgInfo(*row)


async def load_visible_org(runtime: Runtime, caller: Caller, id_or_slug: str) -> OrgInfo:
    """:func:`visible_org` through the organization cache, with a connection of its own
    only on a miss, released before returning.

    Routes that go on to write use this rather than a request-long connection: on
    PostgreSQL readers and writers share one pool, and a request holding one connection
    while it waits for a second would deadlock the pool under load.
    """

    async def load() -> OrgInfo | None:
        async with runtime.database.reader.connect() as conn:
            return await find_org(conn, id_or_slug)

    org = await runtime.organizations.get_or_load(id_or_slug, load)
    return _visible(caller, org, id_or_slug)


async def visible_org(conn: AsyncConnection, caller: Caller, id_or_slug: str) -> OrgInfo:
    """The org, if the caller may see it; a 404 otherwise, the same as for a missing org,
    so that outsiders cannot learn which organizations exist."""
    return _visible(caller, await find_org(conn, id_or_slug), id_or_slug)


def _visible(caller: Caller, org: OrgInfo | None, id_or_slug: str) -> OrgInfo:
    if org is None or not is_member(caller.access, org.id):
        raise problems.not_found(f"organization {id_or_slug!r} not found")
    return org


def scope_filter(project_id: ColumnElement[Any], scope: ReadScope | None) -> ColumnElement[bool]:
    """The SQL form of ``scope.allows(project_id)``: a list reads only the rows its caller
    may see, rather than the whole organization filtered in Python."""
    if scope is None:
        return false()
    if scope.everything:
        return true()
    allowed: list[ColumnElement[bool]] = []
    if scope.unscoped:
        allowed.append(project_id.is_(None))
    if scope.project_ids:
        allowed.append(project_id.in_(sorted(scope.project_ids)))
    return or_(*allowed) if allowed else false()


#: Activities after which a cached caller (its session, its grants) may be wrong.
_CHANGES_CALLERS = frozenset(
    {
        "membership.created",
        "membership.updated",
        "membership.deleted",
        "session.revoked",
        "organization.deleted",
    }
)


def forget_changed_reads(runtime: Runtime, activity_type: str) -> None:
    if activity_type in _CHANGES_CALLERS:
        runtime.callers.clear()
    if activity_type == "organization.deleted":
        runtime.organizations.clear()


def wire_read_caches(runtime: Runtime) -> None:
    """Clear the caches when a write that changes them commits here (before its response
    goes out) and when any process's such write reaches this process's log tailer."""

    def committed(recorded: list[NewActivity]) -> None:
        for new in recorded:
            forget_changed_reads(runtime, new.type)

    runtime.writer.observers.append(committed)
    for event in _CHANGES_CALLERS:
        runtime.bus.on(event, lambda activity: forget_changed_reads(runtime, activity.type))


#: The OpenAPI ``responses`` of a create that takes ``tx``: its idempotent replay.
REPLAY_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "A replay: a create repeated with a `tx.transactionId` already used returns "
        "the entity the first one created, and writes nothing "
        "(409 `conflict` if that entity was deleted since).",
        "content": {"application/json": {"schema": {}}},
    },
    201: {"description": "Created."},
}


async def replayed_create(
    runtime: Runtime,
    key: str,
    model: type[Any],
    render: Callable[[Any], dict[str, Any]],
    what: str,
    readable: Callable[[Any], bool] = lambda entity: True,
) -> Response | None:
    """The answer to a create repeated with a ``transactionId`` already used (idempotency
    key ``key``): 200 with the entity the first one created, 409 if that entity has since
    been deleted, or None when the key is new.

    The entity is shown as it stands now, so the caller must still be allowed to read it
    (``readable``): one moved since into a scope the caller cannot read is a 404, exactly
    as its ``GET`` is; a replay must not be a way around the read permission."""
    async with AsyncSession(runtime.database.reader) as session:
        entity_id = await log.find_by_idempotency_key(session, key)
        if entity_id is None:
            return None
        entity = await session.get(model, entity_id)
        if entity is None:
            raise problems.conflict(f"this transactionId created {what} that has since been deleted")
        if not readable(entity):
            raise problems.not_found(f"{what} this transactionId created is not readable by you")
        return json_response(render(entity), 200)
