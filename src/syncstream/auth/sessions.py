"""Who is calling: resolve a token to a user, its session and its memberships."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import Session as OrmSession

from syncstream.auth.tokens import hash_token, new_token, same_hash
from syncstream.db.schema import Membership, Session, User
from syncstream.db.types import new_id, utcnow
from syncstream.permissions import Access, Grant, Role

SESSION_COOKIE = "syncstream_session"


@dataclass(frozen=True, slots=True)
class Caller:
    user_id: str
    email: str
    name: str
    role: str
    created_at: datetime
    session_id: str
    access: Access

    @property
    def system_admin(self) -> bool:
        return self.role == "admin"


def create_session(session: OrmSession | AsyncSession, user_id: str) -> str:
    """A new session for ``user_id`` in the caller's transaction; returns its token."""
    token, token_hash = new_token()
    session.add(Session(id=new_id("ses"), user_id=user_id, token_hash=token_hash, created_at=utcnow()))
    return token


async def load_grants(conn: AsyncConnection, user_id: str) -> tuple[Grant, ...]:
    rows = await conn.execute(
        select(Membership.organization_id, Membership.project_id, Membership.role).where(
            Membership.user_id == user_id
        )
    )
    return tuple(Grant(org, project, cast(Role, role)) for org, project, role in rows)


def token_key(token: str) -> str | None:
    """What a token is looked up (and cached) by: its hash; None for a token that cannot
    be one of ours."""
    if not token or len(token) > 512:
        return None
    return hash_token(token)


async def authenticate(conn: AsyncConnection, token_hash: str) -> Caller | None:
    """The caller behind the token hashed to ``token_hash``, or None for an unknown or
    signed-out token."""
    row = (
        await conn.execute(
            select(
                Session.id,
                Session.token_hash,
                User.id,
                User.email,
                User.name,
                User.role,
                User.created_at,
            )
            .join(User, User.id == Session.user_id)
            .where(Session.token_hash == token_hash)
        )
    ).first()
    if row is None or not same_hash(row[1], token_hash):
        return None
    session_id, _, user_id, email, name, role, created_at = row
    grants = await load_grants(conn, user_id)
    access = Access(user_id=user_id, system_admin=role == "admin", grants=grants)
    return Caller(user_id, email, name, role, created_at, session_id, access)
