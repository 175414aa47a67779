"""Organizations and their projects."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import Field
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from starlette.responses import Response

from syncstream import problems
from syncstream.activities.model import NewActivity
from syncstream.activities.writer import WriteTransaction
from syncstream.db.schema import Membership, Organization, Project
from syncstream.db.types import iso_ms, new_id, utcnow
from syncstream.db.views import OrgInfo
from syncstream.modules.common import (
    CallerDep,
    CamelModel,
    ReaderDep,
    RuntimeDep,
    json_response,
    load_visible_org,
    org_json,
    visible_org,
)
from syncstream.modules.memberships.service import membership_activity
from syncstream.permissions import is_org_admin, read_scope

router = APIRouter(tags=["organizations"])

SLUG_PATTERN = r"^[a-z0-9][a-z0-9-]{1,48}$"


class OrganizationIn(CamelModel):
    name: str = Field(min_length=1, max_length=200)
    slug: str = Field(pattern=SLUG_PATTERN)


class ProjectIn(CamelModel):
    name: str = Field(min_length=1, max_length=200)


def project_json(p: Any) -> dict[str, Any]:
    return {
        "id": p.id,
        "organizationId": p.organization_id,
        "name": p.name,
        "createdAt": iso_ms(p.created_at),
    }


@router.post("/organizations", status_code=201, summary="Create an organization (you become its admin)")
async def create_organization(body: OrganizationIn, caller: CallerDep, runtime: RuntimeDep) -> Response:
    now = utcnow()
    org = Organization(id=new_id("org"), name=body.name, slug=body.slug, created_at=now)
    membership = Membership(
        id=new_id("mem"),
        user_id=caller.user_id,
        organization_id=org.id,
        project_id=None,
        role="admin",
        created_at=now,
    )

    def write(tx: WriteTransaction) -> None:
        taken = tx.session.scalar(select(Organization.id).where(Organization.slug == body.slug))
        if taken is not None:
            raise problems.conflict(f"the slug {body.slug!r} is taken")
        tx.session.add(org)
        tx.session.flush()
        tx.session.add(membership)
        tx.session.flush()
        tx.record(membership_activity("create", membership, caller.user_id))

    try:
        await runtime.writer.run(write)
    except IntegrityError as exc:
        raise problems.conflict(f"the slug {body.slug!r} is taken") from exc
    return json_response(org_json(OrgInfo(org.id, org.name, org.slug, org.created_at)), 201)


@router.get("/organizations", summary="Organizations you belong to (system admins: all)")
async def list_organizations(caller: CallerDep, conn: ReaderDep) -> Response:
    t = Organization.__table__
    query = select(t.c.id, t.c.name, t.c.slug, t.c.created_at).order_by(t.c.created_at, t.c.id)
    if not caller.system_admin:
        org_ids = sorted({g.organization_id for g in caller.access.grants})
        query = query.where(t.c.id.in_(org_ids))
    rows = await conn.execute(query)
    return json_response({"items": [org_json(OrgInfo(*row)) for row in rows]})


@router.get("/organizations/{org}", summary="One organization (404 for non-members)")
async def get_organization(org: str, caller: CallerDep, conn: ReaderDep) -> Response:
    return json_response(org_json(await visible_org(conn, caller, org)))


def require_org_admin(caller: CallerDep, org: OrgInfo) -> None:
    if not is_org_admin(caller.access, org.id):
        raise problems.forbidden("only an admin of the organization may do this")


@router.delete("/organizations/{org}", status_code=204, summary="Delete an organization (org admin)")
async def delete_organization(org: str, caller: CallerDep, runtime: RuntimeDep) -> Response:
    found = await load_visible_org(runtime, caller, org)
    require_org_admin(caller, found)

    def write(tx: WriteTransaction) -> None:
        tx.session.execute(delete(Organization).where(Organization.id == found.id))
        tx.record(
            NewActivity(
                action="delete",
                entity_type="organization",
                entity_id=found.id,
                organization_id=found.id,
                project_id=None,
                user_id=caller.user_id,
                data=org_json(found),
            )
        )

    await runtime.writer.run(write)
    return json_response(None, 204)


@router.post("/organizations/{org}/projects", status_code=201, summary="Create a project (org admin)")
async def create_project(org: str, body: ProjectIn, caller: CallerDep, runtime: RuntimeDep) -> Response:
    found = await load_visible_org(runtime, caller, org)
    require_org_admin(caller, found)
    project = Project(id=new_id("prj"), organization_id=found.id, name=body.name, created_at=utcnow())
    await runtime.writer.run(lambda tx: tx.session.add(project))
    return json_response(project_json(project), 201)


@router.get("/organizations/{org}/projects", summary="Projects of the organization you can read")
async def list_projects(org: str, caller: CallerDep, conn: ReaderDep) -> Response:
    found = await visible_org(conn, caller, org)
    scope = read_scope(caller.access, found.id)
    rows = await conn.execute(
        select(Project.__table__)
        .where(Project.organization_id == found.id)
        .order_by(Project.created_at, Project.id)
    )
    items = [project_json(r) for r in rows if scope is not None and scope.allows(r.id)]
    return json_response({"items": items})
