"""Who is calling: resolve a token to a user, its session and its memberships."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import cast

from sqlalchemy import bindparam, select, update
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
    #: When the session was made, and last used as its row said when this was read
    #: (Unix seconds): what its lifetimes run from (see session_activity.py).
    session_started: float
    session_last_used: float

    @property
    def system_admin(self) -> bool:
        return self.role == "admin"


def create_session(
    session: OrmSession | AsyncSession,
    user_id: str,
    *,
    user_agent: str | None = None,
    address: str | None = None,
) -> str:
    """A new session for ``user_id`` in the caller's transaction; returns its token."""
    token, token_hash = new_token()
    now = utcnow()
    session.add(
        Session(
            id=new_id("ses"),
            user_id=user_id,
            token_hash=token_hash,
            created_at=now,
            last_used_at=now,
            user_agent=None if user_agent is None else user_agent[:200],
            address=None if address is None else address[:64],
        )
    )
    return token


_TOUCH = (
    update(Session)
    .where(Session.id == bindparam("session_id"), Session.last_used_at < bindparam("used"))
    .values(last_used_at=bindparam("used"))
)


def record_last_used(session: OrmSession, used: dict[str, float]) -> None:
    """Move each session's ``last_used_at`` forward to the given time (never back)."""
    rows = [
        {"session_id": session_id, "used": datetime.fromtimestamp(at, UTC)} for session_id, at in used.items()
    ]
    session.connection().execute(_TOUCH, rows)


_LAST_USED = select(Session.last_used_at).where(Session.id == bindparam("session_id"))


async def session_last_used(conn: AsyncConnection, session_id: str) -> float | None:
    """When the session was last used, from its row; None once it is ended."""
    value = await conn.scalar(_LAST_USED, {"session_id": session_id})
    return None if value is None else value.timestamp()


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
    signed-out token. Whether it has expired is for :class:`SessionActivity` to say: the
    caller is cached, and a session's idle lifetime moves as it is used."""
    row = (
        await conn.execute(
            select(
                Session.id,
                Session.token_hash,
                Session.created_at,
                Session.last_used_at,
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
    session_id, _, started, last_used, user_id, email, name, role, created_at = row
    grants = await load_grants(conn, user_id)
    access = Access(user_id=user_id, system_admin=role == "admin", grants=grants)
    return Caller(
        user_id, email, name, role, created_at, session_id, access, started.timestamp(), last_used.timestamp()
    )
