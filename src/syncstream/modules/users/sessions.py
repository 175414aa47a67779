"""The caller's sessions: list them, end one, end all the others."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy import select
from starlette.responses import Response

from syncstream import problems
from syncstream.activities.writer import WriteTransaction
from syncstream.db.schema import Session
from syncstream.db.types import iso_ms
from syncstream.modules.common import CallerDep, ReaderDep, RuntimeDep, json_response
from syncstream.modules.users.routes import end_sessions, signed_out_response

router = APIRouter(tags=["sessions"])

#: The most sessions the list shows (the most recently used first).
MAX_LISTED = 100


def _iso(seconds: float) -> str:
    return iso_ms(datetime.fromtimestamp(seconds, UTC))


@router.get("/me/sessions", summary="Your sessions that have not ended, the most recently used first")
async def list_sessions(caller: CallerDep, runtime: RuntimeDep, conn: ReaderDep) -> Response:
    rows = await conn.execute(
        select(Session.id, Session.created_at, Session.last_used_at, Session.user_agent, Session.address)
        .where(Session.user_id == caller.user_id)
        .order_by(Session.last_used_at.desc(), Session.id)
        .limit(MAX_LISTED * 10)  # a bound on the read; expired ones are among the last
    )
    now = time.time()
    items: list[dict[str, Any]] = []
    for session_id, created_at, last_used_at, user_agent, address in rows:
        used, expires = runtime.sessions.expiry(session_id, created_at.timestamp(), last_used_at.timestamp())
        if session_id == caller.session_id:
            used, expires = runtime.sessions.last_used(caller), runtime.sessions.expires_at(caller)
        if expires <= now:
            continue
        items.append(
            {
                "id": session_id,
                "createdAt": iso_ms(created_at),
                "lastUsedAt": _iso(used),
                "expiresAt": _iso(expires),
                "current": session_id == caller.session_id,
                "userAgent": user_agent,
                "address": address,
            }
        )
    items.sort(key=lambda item: (item["lastUsedAt"], item["id"]), reverse=True)
    return json_response({"items": items[:MAX_LISTED]})


@router.delete(
    "/me/sessions/{session_id}", status_code=204, summary="End one of your sessions; its streams end too"
)
async def end_session(session_id: str, caller: CallerDep, runtime: RuntimeDep, request: Request) -> Response:
    def write(tx: WriteTransaction) -> None:
        owner = tx.session.scalar(select(Session.user_id).where(Session.id == session_id))
        if owner != caller.user_id:  # another user's is as missing as one that never was
            raise problems.not_found(f"session {session_id!r} not found")
        end_sessions(tx, caller.user_id, [session_id])

    await runtime.writer.run(write)
    runtime.sessions.forget(session_id)
    if session_id == caller.session_id:
        return signed_out_response(request)
    return json_response(None, 204)


@router.delete(
    "/me/sessions",
    status_code=204,
    summary="Sign out everywhere else: end every session but this one; their streams end too",
)
async def end_other_sessions(caller: CallerDep, runtime: RuntimeDep) -> Response:
    def write(tx: WriteTransaction) -> list[str]:
        others = tx.session.scalars(
            select(Session.id).where(Session.user_id == caller.user_id, Session.id != caller.session_id)
        ).all()
        end_sessions(tx, caller.user_id, list(others))
        return list(others)

    for session_id in await runtime.writer.run(write):
        runtime.sessions.forget(session_id)
    return json_response(None, 204)
