"""Memberships of an organization (org admins manage them)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import Field
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.responses import Response

from syncstream import problems
from syncstream.activities.writer import WriteTransaction
from syncstream.db.schema import Membership, Project, User
from syncstream.db.types import new_id, utcnow
from syncstream.modules.common import (
    CallerDep,
    CamelModel,
    ReaderDep,
    RuntimeDep,
    json_response,
    load_visible_org,
    visible_org,
)
from syncstream.modules.memberships.service import membership_activity, membership_json
from syncstream.modules.organizations.routes import require_org_admin

router = APIRouter(tags=["memberships"])


class MembershipIn(CamelModel):
    email: str = Field(min_length=3, max_length=320)
    role: Literal["admin", "member"]
    project_id: str | None = Field(default=None, max_length=64)


class MembershipPatch(CamelModel):
    role: Literal["admin", "member"]


@router.get("/organizations/{org}/memberships", summary="Memberships of the organization (org admin)")
async def list_memberships(org: str, caller: CallerDep, conn: ReaderDep) -> Response:
    found = await visible_org(conn, caller, org)
    require_org_admin(caller, found)
    rows = await conn.execute(
        select(Membership.__table__)
        .where(Membership.organization_id == found.id)
        .order_by(Membership.created_at, Membership.id)
    )
    return json_response({"items": [membership_json(r) for r in rows]})


@router.post("/organizations/{org}/memberships", status_code=201, summary="Add a member (org admin)")
async def create_membership(org: str, body: MembershipIn, caller: CallerDep, runtime: RuntimeDep) -> Response:
    found = await load_visible_org(runtime, caller, org)
    require_org_admin(caller, found)

    def write(tx: WriteTransaction) -> Membership:
        user_id = tx.session.scalar(select(User.id).where(User.email == body.email.lower()))
        if user_id is None:
            raise problems.not_found(f"no user with email {body.email!r}")
        if body.project_id is not None:
            project_org = tx.session.scalar(
                select(Project.organization_id).where(Project.id == body.project_id)
            )
            if project_org != found.id:
                raise problems.not_found(f"project {body.project_id!r} not found in this organization")
        existing = tx.session.scalar(
            select(Membership.id).where(
                Membership.user_id == user_id,
                Membership.organization_id == found.id,
                Membership.project_id.is_(None)
                if body.project_id is None
                else Membership.project_id == body.project_id,
            )
        )
        if existing is not None:
            raise problems.conflict("this user already has that membership")
        membership = Membership(
            id=new_id("mem"),
            user_id=user_id,
            organization_id=found.id,
            project_id=body.project_id,
            role=body.role,
            created_at=utcnow(),
        )
        tx.session.add(membership)
        tx.session.flush()
        tx.record(membership_activity("create", membership, caller.user_id))
        return membership

    return json_response(membership_json(await runtime.writer.run(write)), 201)


def _membership(session: Session, org_id: str, membership_id: str) -> Membership:
    membership = session.get(Membership, membership_id)
    if membership is None or membership.organization_id != org_id:
        raise problems.not_found(f"membership {membership_id!r} not found")
    return membership


@router.patch("/organizations/{org}/memberships/{membership_id}", summary="Change a member's role")
async def update_membership(
    org: str,
    membership_id: str,
    body: MembershipPatch,
    caller: CallerDep,
    runtime: RuntimeDep,
) -> Response:
    found = await load_visible_org(runtime, caller, org)
    require_org_admin(caller, found)

    def write(tx: WriteTransaction) -> Membership:
        membership = _membership(tx.session, found.id, membership_id)
        if membership.role != body.role:
            membership.role = body.role
            tx.session.flush()
            tx.record(membership_activity("update", membership, caller.user_id))
        return membership

    return json_response(membership_json(await runtime.writer.run(write)))


@router.delete(
    "/organizations/{org}/memberships/{membership_id}", status_code=204, summary="Remove a membership"
)
async def delete_membership(org: str, membership_id: str, caller: CallerDep, runtime: RuntimeDep) -> Response:
    found = await load_visible_org(runtime, caller, org)
    require_org_admin(caller, found)

    def write(tx: WriteTransaction) -> None:
        membership = _membership(tx.session, found.id, membership_id)
        tx.session.delete(membership)
        tx.session.flush()
        tx.record(membership_activity("delete", membership, caller.user_id))

    await runtime.writer.run(write)
    return json_response(None, 204)
