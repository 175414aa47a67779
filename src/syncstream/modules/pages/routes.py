"""Pages: public to read, written by system admins."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

from fastapi import APIRouter
from pydantic import Field
from sqlalchemy import Table, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from starlette.responses import Response

from syncstream import problems
from syncstream.activities.model import Action, NewActivity
from syncstream.activities.writer import WriteTransaction
from syncstream.auth.sessions import Caller
from syncstream.db.prepared import PreparedInsert
from syncstream.db.schema import Page
from syncstream.db.types import new_id, utcnow
from syncstream.modules.common import (
    REPLAY_RESPONSES,
    CallerDep,
    CamelModel,
    ReaderDep,
    RuntimeDep,
    TxIn,
    json_response,
    replayed_create,
)
from syncstream.modules.hot import HotRoute
from syncstream.modules.pages.entity import PAGE, page_json
from syncstream.permissions import Entity, is_allowed
from syncstream.runtime import Runtime

router = APIRouter(tags=["pages"])

EDITABLE = ("title", "content")
_INSERT = PreparedInsert(cast(Table, Page.__table__))


class PageIn(CamelModel):
    title: str = Field(min_length=1, max_length=500)
    content: str = Field(max_length=512 * 1024)
    tx: TxIn | None = None


class PagePatch(CamelModel):
    title: str | None = Field(default=None, min_length=1, max_length=500)
    content: str | None = Field(default=None, max_length=512 * 1024)
    tx: TxIn | None = None


def _require_writer(caller: Caller) -> None:
    if not is_allowed(caller.access, "write", Entity(public=True)):
        raise problems.forbidden("only system admins may write pages")


def _page_activity(action: Action, page: Any, caller: Caller, **extra: Any) -> NewActivity:
    # Page messages always carry tx: null (public: the stream must not reveal who wrote).
    return PAGE.activity(action, page, user_id=caller.user_id, **extra)


async def _replayed(runtime: Any, key: str) -> Response | None:
    return await replayed_create(runtime, key, Page, page_json, "a page")


@router.post("/pages", status_code=201, summary="Create a page (system admin)", responses=REPLAY_RESPONSES)
async def create_page(body: PageIn, caller: CallerDep, runtime: RuntimeDep) -> Response:
    return await create(runtime, caller, {}, body)


async def create(runtime: Runtime, caller: Caller, _path: dict[str, str], body: PageIn) -> Response:
    """``create_page``'s work, also run by its hot route (``HOT_CREATE``)."""
    _require_writer(caller)
    key = PAGE.idempotency_key(caller.user_id, None, body.tx.transaction_id) if body.tx else None
    if key is not None and (replay := await _replayed(runtime, key)) is not None:
        return replay
    now = utcnow()
    row = {
        "id": new_id("pg"),
        "title": body.title,
        "content": body.content,
        "created_by": caller.user_id,
        "created_at": now,
        "updated_at": now,
    }
    page = SimpleNamespace(**row)  # not an ORM object: nothing here needs one

    def write(tx: WriteTransaction) -> None:
        _INSERT.execute(tx.session.connection(), row)
        tx.record(_page_activity("create", page, caller, tx=body.tx.wire() if body.tx else None))

    try:
        await runtime.writer.run(write)
    except IntegrityError:
        raced = await _replayed(runtime, key) if key else None
        if raced is None:
            raise
        return raced
    return json_response(page_json(page), 201)


#: Served without the framework's per-request work, as attachment creates are (hot.py).
HOT_CREATE = HotRoute("POST", "/pages", PageIn, create)


@router.get("/pages", summary="All pages (public)")
async def list_pages(conn: ReaderDep) -> Response:
    t = Page.__table__
    rows = await conn.execute(select(t).order_by(t.c.created_at, t.c.id))
    return json_response({"items": [page_json(r) for r in rows]})


@router.get("/pages/{page_id}", summary="One page (public)")
async def get_page(page_id: str, conn: ReaderDep) -> Response:
    t = Page.__table__
    row = (await conn.execute(select(t).where(t.c.id == page_id))).first()
    if row is None:
        raise problems.not_found(f"page {page_id!r} not found")
    return json_response(page_json(row))


def _page(session: Session, page_id: str) -> Page:
    page = session.get(Page, page_id)
    if page is None:
        raise problems.not_found(f"page {page_id!r} not found")
    return page


@router.patch("/pages/{page_id}", summary="Change a page (system admin)")
async def update_page(page_id: str, body: PagePatch, caller: CallerDep, runtime: RuntimeDep) -> Response:
    _require_writer(caller)
    given = body.model_dump(exclude_unset=True, exclude={"tx"})
    if any(given.get(field, "") is None for field in EDITABLE):
        raise problems.Problem(422, "validation_error", "title and content may not be null")

    def write(tx: WriteTransaction) -> Page:
        page = _page(tx.session, page_id)
        changed = [f for f in EDITABLE if f in given and getattr(page, f) != given[f]]
        if changed:
            for field in changed:
                setattr(page, field, given[field])
            page.updated_at = utcnow()
            tx.session.flush()
            tx.record(_page_activity("update", page, caller, changed_keys=changed))
        return page

    return json_response(page_json(await runtime.writer.run(write)))


@router.delete("/pages/{page_id}", status_code=204, summary="Delete a page (system admin)")
async def delete_page(page_id: str, caller: CallerDep, runtime: RuntimeDep) -> Response:
    _require_writer(caller)

    def write(tx: WriteTransaction) -> None:
        page = _page(tx.session, page_id)
        activity = _page_activity("delete", page, caller)
        tx.session.delete(page)
        tx.session.flush()
        tx.record(activity)

    await runtime.writer.run(write)
    return json_response(None, 204)
