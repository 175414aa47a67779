"""Who is calling: resolve a token to a user, its session and its memberships."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import cast

from sqlalchemy import Select, bindparam, func, literal, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import Session as OrmSession

from syncstream.auth.tokens import hash_token, new_token, same_hash
from syncstream.db.schema import Activity, Membership, Session, User
from syncstream.db.types import new_id, utcnow
from syncstream.permissions import Access, Grant, Role

SESSION_COOKIE = "syncstream_session"


@dataclass(frozen=True, slots=True)
class Memberships:
    """A user's memberships by ID, read in one statement with the log position they are
    as of: membership events after ``as_of`` apply on top, earlier ones are in it.

    ``generation`` is the caller cache's generation when the read began. While the cache
    is still in it, no membership, sign-out or organization event has been routed (or
    committed) in this process since: every later one is still to come, so a stream
    registered now can start from this snapshot instead of reading it again."""

    grants: tuple[tuple[str, Grant], ...]
    as_of: int
    generation: int

    def in_organization(self, organization_id: str) -> dict[str, Grant]:
        return {mid: grant for mid, grant in self.grants if grant.organization_id == organization_id}


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
    #: The memberships behind ``access``, with their IDs and log position (None when the
    #: caller was made elsewhere, e.g. by a host application's own dependency).
    memberships: Memberships | None = None

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


def _memberships_query() -> Select[int, str | None, str | None, str | None, str | None]:
    """Every membership of a user with the log position, as one statement: one snapshot
    on every database (PostgreSQL reads each statement in its own); the outer join from a
    one-row select yields the position even without any membership."""
    position = select(func.coalesce(func.max(Activity.id), 0)).scalar_subquery()
    one = select(literal(1).label("one")).subquery()
    return select(
        position, Membership.id, Membership.organization_id, Membership.project_id, Membership.role
    ).select_from(one.outerjoin(Membership, Membership.user_id == bindparam("user_id")))


_USER_MEMBERSHIPS = _memberships_query()


async def load_user_memberships(conn: AsyncConnection, user_id: str, generation: int = -1) -> Memberships:
    """The user's memberships in every organization, and the log position they are as of."""
    rows = (await conn.execute(_USER_MEMBERSHIPS, {"user_id": user_id})).all()
    grants = tuple(
        (mid, Grant(cast(str, org), project, cast(Role, role)))
        for _, mid, org, project, role in rows
        if mid is not None
    )
    return Memberships(grants, int(rows[0][0]), generation)


def token_key(token: str) -> str | None:
    """What a token is looked up (and cached) by: its hash; None for a token that cannot
    be one of ours."""
    if not token or len(token) > 512:
        return None
    return hash_token(token)


async def authenticate(conn: AsyncConnection, token_hash: str, generation: int = -1) -> Caller | None:
    """The caller behind the token hashed to ``token_hash``, or None for an unknown or
    signed-out token. Whether it has expired is for :class:`SessionActivity` to say: the
    caller is cached, and a session's idle lifetime moves as it is used. ``generation``:
    the caller cache's as this read began (see :class:`Memberships`)."""
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
    memberships = await load_user_memberships(conn, user_id, generation)
    grants = tuple(grant for _, grant in memberships.grants)
    access = Access(user_id=user_id, system_admin=role == "admin", grants=grants)
    return Caller(
        user_id,
        email,
        name,
        role,
        created_at,
        session_id,
        access,
        started.timestamp(),
        last_used.timestamp(),
        memberships,
    )
