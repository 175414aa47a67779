"""Attachments: org-scoped entities, readable and writable by whoever may read their scope."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

from fastapi import APIRouter, Query
from sqlalchemy import Table, bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session
from starlette.responses import Response

from syncstream import problems
from syncstream.activities.model import Action, NewActivity
from syncstream.activities.writer import WriteTransaction
from syncstream.auth.sessions import Caller
from syncstream.db.prepared import PreparedInsert
from syncstream.db.schema import Attachment, Project
from syncstream.db.types import new_id, utcnow
from syncstream.db.views import OrgInfo
from syncstream.modules.attachments.entity import ATTACHMENT
from syncstream.modules.attachments.schemas import (
    EDITABLE,
    AttachmentDelete,
    AttachmentIn,
    AttachmentPatch,
    attachment_json,
)
from syncstream.modules.common import (
    REPLAY_RESPONSES,
    CallerDep,
    ReaderDep,
    RuntimeDep,
    TxIn,
    json_response,
    load_visible_org,
    replayed_create,
    scope_filter,
    visible_org,
)
from syncstream.modules.hot import HotRoute
from syncstream.modules.paging import DEFAULT_LIMIT, MAX_LIMIT, decode_cursor, page_json, page_query
from syncstream.permissions import Access, Entity, is_allowed, read_scope
from syncstream.runtime import Runtime

router = APIRouter(tags=["attachments"])


def _activity(action: Action, attachment: Any, caller: Caller, tx: TxIn | None, **extra: Any) -> NewActivity:
    """The activity of one attachment change: ``data`` is the entity as it stands now
    (pass the snapshot taken before a delete)."""
    return ATTACHMENT.activity(
        action, attachment, user_id=caller.user_id, tx=tx.wire() if tx else None, **extra
    )


def _may(access: Access, org_id: str, project_id: str | None) -> bool:
    return is_allowed(access, "write", Entity(org_id, project_id))


def _check_project(session: Session, org: OrgInfo, project_id: str | None) -> None:
    if project_id is None:
        return
    owner = session.connection().scalar(_PROJECT_OWNER, {"id": project_id})
    if owner != org.id:
        raise problems.not_found(f"project {project_id!r} not found in this organization")


_PROJECT_OWNER = select(Project.organization_id).where(Project.id == bindparam("id"))
_INSERT = PreparedInsert(cast(Table, Attachment.__table__))


async def _replayed(runtime: Any, key: str, caller: Caller) -> Response | None:
    def readable(attachment: Attachment) -> bool:
        scope = Entity(attachment.organization_id, attachment.project_id)
        return is_allowed(caller.access, "read", scope)

    return await replayed_create(runtime, key, Attachment, attachment_json, "an attachment", readable)


@router.post(
    "/organizations/{org}/attachments",
    status_code=201,
    summary="Create an attachment",
    responses=REPLAY_RESPONSES,
)
async def create_attachment(org: str, body: AttachmentIn, caller: CallerDep, runtime: RuntimeDep) -> Response:
    return await create(runtime, caller, {"org": org}, body)


async def create(runtime: Runtime, caller: Caller, path: dict[str, str], body: AttachmentIn) -> Response:
    """``create_attachment``'s work, also run by its hot route (``HOT_CREATE``)."""
    org = path["org"]
    found = await load_visible_org(runtime, caller, org)
    if not _may(caller.access, found.id, body.project_id):
        raise problems.forbidden("you may not write attachments in that scope")
    key = None
    if body.tx is not None:
        key = ATTACHMENT.idempotency_key(caller.user_id, found.id, body.tx.transaction_id)
        replay = await _replayed(runtime, key, caller)
        if replay is not None:
            return replay
    now = utcnow()
    row = {
        "id": new_id("att"),
        "organization_id": found.id,
        "project_id": body.project_id,
        "name": body.name,
        "url": body.url,
        "content_type": body.content_type,
        "size": body.size,
        "created_by": caller.user_id,
        "created_at": now,
        "updated_at": now,
    }
    attachment = SimpleNamespace(**row)  # not an ORM object: nothing here needs one
    created = attachment_json(attachment)  # the activity's data and the response, made once

    def write(tx: WriteTransaction) -> None:
        # Core, not the ORM unit of work: this is the hottest write there is.
        _check_project(tx.session, found, body.project_id)
        _INSERT.execute(tx.session.connection(), row)
        tx.record(_activity("create", attachment, caller, body.tx, data=created))

    try:
        await runtime.writer.run(write)
    except IntegrityError:
        # Two identical creates raced: the other one won; answer with its entity.
        raced = await _replayed(runtime, key, caller) if key else None
        if raced is None:
            raise
        return raced
    return json_response(created, 201)


#: Creates are the hottest write: served without the framework's per-request work (hot.py).
HOT_CREATE = HotRoute("POST", "/organizations/{org}/attachments", AttachmentIn, create)


LIST_DESCRIPTION = """
The attachments you can read, oldest first, a page at a time: `limit` (1 to 1000, the default)
items, then `hasMore` and the `nextCursor` to pass as `cursor` for the next page.
"""


@router.get(
    "/organizations/{org}/attachments", summary="Attachments you can read", description=LIST_DESCRIPTION
)
async def list_attachments(
    org: str,
    caller: CallerDep,
    conn: ReaderDep,
    project_id: str | None = Query(default=None, alias="projectId", max_length=64),
    cursor: str | None = Query(default=None, max_length=200),
    limit: int = Query(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT),
) -> Response:
    found = await visible_org(conn, caller, org)
    after = decode_cursor(cursor)
    scope = read_scope(caller.access, found.id)
    t = Attachment.__table__
    query = select(t).where(t.c.organization_id == found.id, scope_filter(t.c.project_id, scope))
    if project_id is not None:
        query = query.where(t.c.project_id == project_id)
    rows = (await conn.execute(page_query(query, t.c.created_at, t.c.id, after, limit))).all()
    return json_response(page_json(list(rows), limit, attachment_json))


def _readable(session: Session, caller: Caller, org: OrgInfo, attachment_id: str) -> Attachment:
    attachment = session.get(Attachment, attachment_id)
    if (
        attachment is None
        or attachment.organization_id != org.id
        or not is_allowed(caller.access, "read", Entity(org.id, attachment.project_id))
    ):
        raise problems.not_found(f"attachment {attachment_id!r} not found")
    return attachment


@router.get("/organizations/{org}/attachments/{attachment_id}", summary="One attachment")
async def get_attachment(org: str, attachment_id: str, caller: CallerDep, runtime: RuntimeDep) -> Response:
    found = await load_visible_org(runtime, caller, org)
    async with AsyncSession(runtime.database.reader) as session:
        attachment = await session.run_sync(_readable, caller, found, attachment_id)
    return json_response(attachment_json(attachment))


@router.patch("/organizations/{org}/attachments/{attachment_id}", summary="Change an attachment")
async def update_attachment(
    org: str,
    attachment_id: str,
    body: AttachmentPatch,
    caller: CallerDep,
    runtime: RuntimeDep,
) -> Response:
    found = await load_visible_org(runtime, caller, org)
    given = body.model_dump(by_alias=True, exclude_unset=True)
    if given.get("name", "") is None:
        raise problems.Problem(422, "validation_error", "name may not be null")

    def write(tx: WriteTransaction) -> Attachment:
        attachment = _readable(tx.session, caller, found, attachment_id)
        changed = [
            field
            for field, attr in EDITABLE.items()
            if field in given and getattr(attachment, attr) != given[field]
        ]
        if "projectId" in changed:
            _check_project(tx.session, found, given["projectId"])
            if not _may(caller.access, found.id, given["projectId"]):
                raise problems.forbidden("you may not move the attachment into that project")
        if changed:
            for field in changed:
                setattr(attachment, EDITABLE[field], given[field])
            attachment.updated_at = utcnow()
            tx.session.flush()
            tx.record(_activity("update", attachment, caller, body.tx, changed_keys=changed))
        return attachment

    return json_response(attachment_json(await runtime.writer.run(write)))


@router.delete(
    "/organizations/{org}/attachments/{attachment_id}", status_code=204, summary="Delete an attachment"
)
async def delete_attachment(
    org: str,
    attachment_id: str,
    caller: CallerDep,
    runtime: RuntimeDep,
    body: AttachmentDelete | None = None,
) -> Response:
    found = await load_visible_org(runtime, caller, org)

    def write(tx: WriteTransaction) -> None:
        attachment = _readable(tx.session, caller, found, attachment_id)
        snapshot = attachment_json(attachment)
        tx.session.delete(attachment)
        tx.session.flush()
        tx.record(_activity("delete", attachment, caller, body.tx if body else None, data=snapshot))

    await runtime.writer.run(write)
    return json_response(None, 204)
