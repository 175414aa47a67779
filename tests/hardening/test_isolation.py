"""Cross-tenant isolation under concurrency: several organizations written to at once by
several writers each — creates in and out of projects, moves between projects, deletes —
while an org admin, an org member and a project member of every organization (and a system
admin of one) are subscribed. No subscriber ever sees another organization's activity, or
one of a project it may not read; and each sees exactly what it may, once, in order.

What each may see is computed from the log itself (the org admin's JSON catch-up, which
sees everything of its org) and the contract's rules, on the project of the entity after
the change (before it, for a delete).
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from typing import Any

import pytest

from api.support import add_member, create_org, create_project
from harness import Api, ServerProcess, User

from .support import RawStream, admin_user, assert_exactly_once_in_order, everything, open_stream

pytestmark = pytest.mark.asyncio(loop_scope="session")

ORGS = 4
WRITERS_PER_ORG = 3
WRITES_EACH = 12


@dataclass
class Tenant:
    org: dict[str, Any]
    admin: User
    member: User
    project_member: User
    p1: str
    p2: str
    streams: dict[str, RawStream] = field(default_factory=dict)
    starts: dict[str, int] = field(default_factory=dict)

    @property
    def path(self) -> str:
        return f"/organizations/{self.org['id']}/sync/stream"


async def make_tenant(api: Api) -> Tenant:
    admin, member, project_member = [await api.sign_up() for _ in range(3)]
    org = await create_org(api, admin.token)
    p1 = (await create_project(api, admin.token, org["id"]))["id"]
    p2 = (await create_project(api, admin.token, org["id"]))["id"]
    await add_member(api, admin.token, org["id"], member.email)
    await add_member(api, admin.token, org["id"], project_member.email, "member", p1)
    return Tenant(org, admin, member, project_member, p1, p2)


async def writer(api: Api, tenant: Tenant, seed: int) -> None:
    rng = random.Random(seed)
    mine: list[str] = []
    base = f"/organizations/{tenant.org['id']}/attachments"
    for n in range(WRITES_EACH):
        project = rng.choice([None, tenant.p1, tenant.p2])
        roll = rng.random()
        if mine and roll < 0.25:  # move one between projects (and out of them)
            await api.ok(
                "PATCH", f"{base}/{rng.choice(mine)}", json={"projectId": project}, token=tenant.admin.token
            )
        elif mine and roll < 0.35:
            victim = mine.pop(rng.randrange(len(mine)))
            await api.ok("DELETE", f"{base}/{victim}", 204, token=tenant.admin.token)
        else:
            made = await api.ok(
                "POST",
                base,
                201,
                json={"name": f"w{seed}-{n}", "projectId": project},
                token=tenant.admin.token,
            )
            mine.append(made["id"])


def visible(role: str, tenant: Tenant, message: dict[str, Any]) -> bool:
    if role in ("admin", "system admin"):
        return True
    if role == "member":
        return message["projectId"] is None
    return message["projectId"] == tenant.p1


async def test_no_subscriber_sees_another_tenants_activity(server: ServerProcess) -> None:
    api = Api(server.url)
    system = await admin_user(server, api)
    tenants = [await make_tenant(api) for _ in range(ORGS)]
    for t in tenants:
        for role, user in (("admin", t.admin), ("member", t.member), ("project member", t.project_member)):
            t.streams[role] = await open_stream(
                server.port, f"{t.path}?offset=now&live=sse", token=user.token
            )
    watched = tenants[0]
    watched.streams["system admin"] = await open_stream(
        server.port, f"{watched.path}?offset=now&live=sse", token=system.token
    )
    for t in tenants:
        t.starts = {role: int(s.offsets[0]["cursor"] or 0) for role, s in t.streams.items()}

    await asyncio.gather(
        *(writer(api, t, 1000 * i + w) for i, t in enumerate(tenants) for w in range(WRITERS_PER_ORG))
    )
    # Last, one visible to everyone of each org: a member sees unscoped, a project member p1.
    ends = {}
    for t in tenants:
        base = f"/organizations/{t.org['id']}/attachments"
        unscoped = await api.ok("POST", base, 201, json={"name": "end"}, token=t.admin.token)
        in_p1 = await api.ok("POST", base, 201, json={"name": "end", "projectId": t.p1}, token=t.admin.token)
        ends[t.org["id"]] = {
            "member": unscoped["id"],
            "project member": in_p1["id"],
            "admin": in_p1["id"],
            "system admin": in_p1["id"],
        }

    all_orgs = {t.org["id"] for t in tenants}
    for t in tenants:
        log = await everything(api, t.path, t.admin.token)
        assert {m["organizationId"] for m in log} == {t.org["id"]}
        for role, stream in t.streams.items():
            end = ends[t.org["id"]][role]
            await stream.until(lambda s, end=end: any(c.message["entityId"] == end for c in s.changes))
            stream.abort()
            got = stream.changes
            foreign = [c.message for c in got if c.message["organizationId"] != t.org["id"]]
            assert not foreign, f"{role} of {t.org['id']} saw another organization's activity: {foreign[:3]}"
            assert {c.message["organizationId"] for c in got} <= all_orgs
            forbidden = [c.message for c in got if not visible(role, t, c.message)]
            assert not forbidden, f"{role} saw what it may not read: {forbidden[:3]}"
            ids = [c.id for c in got]
            assert_exactly_once_in_order(ids, role)
            start = t.starts[role]
            want = [int(m["activityId"]) for m in log if int(m["activityId"]) > start and visible(role, t, m)]
            assert ids == want, f"{role} of {t.org['id']}"
    await api.aclose()
