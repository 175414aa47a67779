"""Authentication routes of the contract."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from pydantic import Field
from sqlalchemy import delete, func, or_, select
from sqlalchemy.exc import IntegrityError
from starlette.responses import Response

from syncstream import problems
from syncstream.activities.model import NewActivity
from syncstream.activities.writer import WriteTransaction
from syncstream.auth.passwords import hash_password, verify_password
from syncstream.auth.sessions import SESSION_COOKIE, create_session
from syncstream.db.schema import Membership, Session, User
from syncstream.db.types import iso_ms, new_id, utcnow
from syncstream.modules.common import CallerDep, CamelModel, ReaderDep, RuntimeDep, json_response
from syncstream.modules.memberships.service import membership_json
from syncstream.modules.users.rate_limit import SignInLimiter, SignUpLimiter
from syncstream.modules.users.service import user_json
from syncstream.runtime import Runtime

router = APIRouter(tags=["auth"])

EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+$"


class SignUpIn(CamelModel):
    # Deliberately lenient: the only proof an address works is mail that arrives, and
    # strict validators reject real test and intranet domains.
    email: str = Field(min_length=3, max_length=320, pattern=EMAIL_PATTERN)
    password: str = Field(min_length=8, max_length=1024)
    name: str = Field(min_length=1, max_length=200)


class SignInIn(CamelModel):
    email: str = Field(max_length=320)
    password: str = Field(max_length=1024)


def _session_cookie(request: Request, token: str) -> dict[str, Any]:
    runtime: Runtime = request.app.state.runtime
    return {
        "key": SESSION_COOKIE,
        "value": token,
        # The browser keeps it as long as the session can live; the server ends it sooner
        # when it goes unused (the idle lifetime).
        "max_age": int(runtime.settings.session_max_seconds),
        "httponly": True,
        "samesite": "lax",
        "path": "/",
        "secure": request.url.scheme == "https",
    }


def _new_session(tx: WriteTransaction, request: Request, user_id: str) -> str:
    """A session for ``user_id``, noting what signed in and from where; the user's expired
    sessions are deleted on the way (nothing else would, and they are listed nowhere)."""
    runtime: Runtime = request.app.state.runtime
    settings = runtime.settings
    now = utcnow()
    tx.session.execute(
        delete(Session).where(
            Session.user_id == user_id,
            or_(
                Session.last_used_at <= now - timedelta(seconds=settings.session_idle_seconds),
                Session.created_at <= now - timedelta(seconds=settings.session_max_seconds),
            ),
        )
    )
    return create_session(
        tx.session,
        user_id,
        user_agent=request.headers.get("user-agent"),
        address=client_address(request),
    )


def client_address(request: Request) -> str:
    """The client's address as the server sees it (uvicorn takes it from X-Forwarded-For
    only when the peer is a trusted proxy)."""
    return request.client.host if request.client else "unknown"


@router.post("/auth/sign-up", status_code=201, summary="Create an account")
async def sign_up(body: SignUpIn, runtime: RuntimeDep, request: Request) -> Response:
    limiter: SignUpLimiter = request.app.state.sign_up_limiter
    limiter.attempt(client_address(request))
    password_hash = await hash_password(body.password)
    user = User(
        id=new_id("usr"),
        email=body.email.lower(),
        name=body.name,
        password_hash=password_hash,
        role="user",
        created_at=utcnow(),
    )

    def write(tx: WriteTransaction) -> str:
        taken = tx.session.scalar(select(func.count()).where(User.email == user.email))
        if taken:
            raise problems.conflict(f"the email {user.email!r} is already registered")
        tx.session.add(user)
        tx.session.flush()
        return _new_session(tx, request, user.id)

    try:
        token = await runtime.writer.run(write)
    except IntegrityError as exc:
        raise problems.conflict(f"the email {user.email!r} is already registered") from exc
    response = json_response({"user": user_json(user), "token": token}, 201)
    response.set_cookie(**_session_cookie(request, token))
    return response


@router.post("/auth/sign-in", summary="Sign in and receive a token (and a session cookie)")
async def sign_in(body: SignInIn, runtime: RuntimeDep, request: Request) -> Response:
    limiter: SignInLimiter = request.app.state.sign_in_limiter
    email = body.email.lower()
    address = client_address(request)
    limiter.check(email, address)
    async with runtime.database.reader.connect() as conn:
        row = (await conn.execute(select(User.__table__).where(User.email == email))).first()
    user = User(**row._asdict()) if row is not None else None
    if not await verify_password(user.password_hash if user else None, body.password) or user is None:
        limiter.failed(email, address)
        raise problems.unauthorized("Wrong email or password.")
    limiter.succeeded(email, address)
    signed_in = user
    token = await runtime.writer.run(lambda tx: _new_session(tx, request, signed_in.id))
    response = json_response({"user": user_json(user), "token": token})
    response.set_cookie(**_session_cookie(request, token))
    return response


@router.post("/auth/sign-out", status_code=204, summary="End this session; its streams end too")
async def sign_out(caller: CallerDep, runtime: RuntimeDep, request: Request) -> Response:

    def write(tx: WriteTransaction) -> None:
        end_sessions(tx, caller.user_id, [caller.session_id])

    await runtime.writer.run(write)
    runtime.sessions.forget(caller.session_id)
    return signed_out_response(request)


def signed_out_response(request: Request) -> Response:
    """204, clearing the session cookie with the attributes it was set with, Secure
    included behind HTTPS: a Set-Cookie without Secure over HTTPS is what scanners (and
    strict browsers) flag."""
    response = json_response(None, 204)
    response.delete_cookie(
        SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=request.url.scheme == "https"
    )
    return response


def end_sessions(tx: WriteTransaction, user_id: str, session_ids: list[str]) -> None:
    """End the user's sessions ``session_ids`` in ``tx``: each records a ``session.revoked``
    activity, which clears every process's caller cache and ends the session's streams."""
    if not session_ids:
        return
    tx.session.execute(delete(Session).where(Session.user_id == user_id, Session.id.in_(session_ids)))
    for session_id in session_ids:
        tx.record(
            NewActivity(
                action="delete",
                entity_type="session",
                entity_id=session_id,
                organization_id=None,
                project_id=None,
                user_id=user_id,
                data=None,
                event="session.revoked",
            )
        )


@router.get("/me", summary="The caller and its memberships")
async def me(caller: CallerDep, conn: ReaderDep) -> Response:
    rows = await conn.execute(
        select(Membership.__table__)
        .where(Membership.user_id == caller.user_id)
        .order_by(Membership.created_at, Membership.id)
    )
    user = {
        "id": caller.user_id,
        "email": caller.email,
        "name": caller.name,
        "role": caller.role,
        "createdAt": iso_ms(caller.created_at),
    }
    return json_response({"user": user, "memberships": [membership_json(r) for r in rows]})
