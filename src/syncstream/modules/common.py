"""What every module needs: the runtime, the caller, JSON responses and org lookup."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

import orjson
from fastapi import Depends, Request
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from starlette.responses import Response

from syncstream import problems
from syncstream.activities import log
from syncstream.auth.sessions import SESSION_COOKIE, Caller, authenticate
from syncstream.db.schema import Organization
from syncstream.db.types import iso_ms
from syncstream.permissions import is_member
from syncstream.runtime import Runtime


class CamelModel(BaseModel):
    """Request bodies: camelCase on the wire, unknown fields refused (a typo is an error)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


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


#: Documentation only: these put the two ways to authenticate into the OpenAPI document
#: (``securitySchemes``, and ``security`` on exactly the operations that need a caller),
#: which it did not say, so schema-driven clients and fuzzers could not tell a public
#: operation from one that answers 401. Neither ever rejects: ``bearer_token`` decides.
_BEARER_SCHEME = HTTPBearer(auto_error=False, description="`Authorization: Bearer <token>`")
_COOKIE_SCHEME = APIKeyCookie(
    name=SESSION_COOKIE, auto_error=False, description="The session cookie set by `POST /auth/sign-in`."
)


async def current_caller(
    request: Request,
    runtime: RuntimeDep,
    _bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER_SCHEME)] = None,
    _cookie: Annotated[str | None, Depends(_COOKIE_SCHEME)] = None,
) -> Caller:
    token = bearer_token(request)
    if token is None:
        raise problems.unauthorized()
    async with runtime.database.reader.connect() as conn:
        caller = await authenticate(conn, token)
    if caller is None:
        raise problems.unauthorized()
    return caller


CallerDep = Annotated[Caller, Depends(current_caller)]


@dataclass(frozen=True, slots=True)
class OrgInfo:
    id: str
    name: str
    slug: str
    created_at: datetime


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
    """:func:`visible_org` on a connection of its own, released before returning.

    Routes that go on to write use this rather than a request-long connection: on
    PostgreSQL readers and writers share one pool, and a request holding one connection
    while it waits for a second would deadlock the pool under load.
    """
    async with runtime.database.reader.connect() as conn:
        return await visible_org(conn, caller, id_or_slug)


async def visible_org(conn: AsyncConnection, caller: Caller, id_or_slug: str) -> OrgInfo:
    """The org, if the caller may see it; a 404 otherwise, the same as for a missing org,
    so that outsiders cannot learn which organizations exist."""
    org = await find_org(conn, id_or_slug)
    if org is None or not is_member(caller.access, org.id):
        raise problems.not_found(f"organization {id_or_slug!r} not found")
    return org


async def replayed_create(
    runtime: Runtime, key: str, model: type[Any], render: Callable[[Any], dict[str, Any]], what: str
) -> Response | None:
    """The answer to a create repeated with a ``transactionId`` already used (idempotency
    key ``key``): 200 with the entity the first one created, 409 if that entity has since
    been deleted, or None when the key is new."""
    async with AsyncSession(runtime.database.reader) as session:
        entity_id = await log.find_by_idempotency_key(session, key)
        if entity_id is None:
            return None
        entity = await session.get(model, entity_id)
        if entity is None:
            raise problems.conflict(f"this transactionId created {what} that has since been deleted")
        return json_response(render(entity), 200)
