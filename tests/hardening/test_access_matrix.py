"""No way in: every route by every role, allowed or denied exactly as the contract says.

Roles: no credentials, a made-up token, a signed-out token, an outsider (signed in, in
another organization only), a project member (one project of the org), an org member, an
org admin, a system admin — and an org member authenticated by the session cookie instead
of the header, which must be the same thing. Attachments have their own matrix in
tests/api/test_attachments.py; this covers every other route, both streams (JSON and SSE)
included, and for reads also *what* each role sees, not only the status.

Each route is one test; its whole row (role → outcome) is compared at once, so a failure
shows every cell that differs. Routes that change what they act on (deleting an org, a
membership, a page; signing out) get a fresh target for each role.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import pytest_asyncio

from api.support import PASSWORD, add_member, create_project
from harness import Api, ServerProcess, User, unique

from .support import admin_user, open_stream

pytestmark = pytest.mark.asyncio(loop_scope="session")

ROLES = (
    "anonymous",
    "made-up token",
    "signed-out token",
    "outsider",
    "project member",
    "org member",
    "org member (cookie)",
    "org admin",
    "system admin",
)
UNAUTHENTICATED = ("anonymous", "made-up token", "signed-out token")


def row(
    *, bad: int = 401, outsider: int, project: int, member: int, admin: int, system: int
) -> dict[str, Any]:
    """A row of the matrix: the outcome for each role."""
    return {
        "anonymous": bad,
        "made-up token": bad,
        "signed-out token": bad,
        "outsider": outsider,
        "project member": project,
        "org member": member,
        "org member (cookie)": member,
        "org admin": admin,
        "system admin": system,
    }


def everyone(status: int) -> dict[str, Any]:
    return dict.fromkeys(ROLES, status)


@dataclass
class World:
    api: Api
    server: ServerProcess
    users: dict[str, User]
    tokens: dict[str, str | None]
    org: dict[str, Any]
    projects: dict[str, str]
    attachments: dict[str, str]
    page: dict[str, Any]
    patchable_membership: str
    spares: list[str]

    def credentials(self, role: str) -> dict[str, str]:
        token = self.tokens[role]
        if token is None:
            return {}
        if role.endswith("(cookie)"):
            return {"Cookie": f"syncstream_session={token}"}
        return {"Authorization": f"Bearer {token}"}

    def user_of(self, role: str) -> User:
        return self.users[role.removesuffix(" (cookie)")]

    async def fresh_session(self, role: str) -> dict[str, str]:
        """A new token of the role's user (for sign-out, which ends the one it is given)."""
        if role in UNAUTHENTICATED:
            return self.credentials(role)
        email = self.user_of(role).email
        body = await self.api.ok("POST", "/auth/sign-in", json={"email": email, "password": PASSWORD})
        if role.endswith("(cookie)"):
            return {"Cookie": f"syncstream_session={body['token']}"}
        return {"Authorization": f"Bearer {body['token']}"}

    async def fresh_org(self) -> dict[str, Any]:
        """An organization with the same people in the same places as the world's."""
        owner = self.users["org admin"].token
        org: dict[str, Any] = await self.api.ok(
            "POST", "/organizations", 201, json={"name": "Doomed", "slug": unique("d-")}, token=owner
        )
        project = await create_project(self.api, owner, org["id"])
        member = await add_member(self.api, owner, org["id"], self.users["org member"].email)
        await add_member(
            self.api, owner, org["id"], self.users["project member"].email, "member", project["id"]
        )
        return {**org, "memberMembership": member["id"]}


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def world(server: ServerProcess) -> AsyncIterator[World]:
    api = Api(server.url)
    users = {
        role: await api.sign_up(name=role)
        for role in ("outsider", "project member", "org member", "org admin")
    }
    users["system admin"] = await admin_user(server, api)
    gone = await api.sign_up(name="gone")
    await api.ok("POST", "/auth/sign-out", 204, token=gone.token)
    owner = users["org admin"].token
    org: dict[str, Any] = await api.ok(
        "POST", "/organizations", 201, json={"name": "Matrix", "slug": unique("m-")}, token=owner
    )
    p1 = (await create_project(api, owner, org["id"]))["id"]
    p2 = (await create_project(api, owner, org["id"]))["id"]
    await add_member(api, owner, org["id"], users["org member"].email)
    await add_member(api, owner, org["id"], users["project member"].email, "member", p1)
    # The outsider is an admin elsewhere, which must not help here.
    await api.ok(
        "POST",
        "/organizations",
        201,
        json={"name": "Else", "slug": unique("e-")},
        token=users["outsider"].token,
    )
    attachments = {}
    for scope, project in (("unscoped", None), ("p1", p1), ("p2", p2)):
        made = await api.ok(
            "POST",
            f"/organizations/{org['id']}/attachments",
            201,
            json={"name": scope, "projectId": project},
            token=owner,
        )
        attachments[scope] = made["id"]
    page = await api.ok(
        "POST", "/pages", 201, json={"title": "T", "content": "c"}, token=users["system admin"].token
    )
    spare = await api.sign_up(name="spare")
    patchable = await add_member(api, owner, org["id"], spare.email, "member", p2)
    spares = [(await api.sign_up(name=f"spare{n}")).email for n in range(2)]
    tokens: dict[str, str | None] = {
        "anonymous": None,
        "made-up token": secrets.token_urlsafe(32),
        "signed-out token": gone.token,
        **{role: user.token for role, user in users.items()},
        "org member (cookie)": users["org member"].token,
    }
    yield World(
        api, server, users, tokens, org, {"p1": p1, "p2": p2}, attachments, page, patchable["id"], spares
    )
    await api.aclose()


# -- the routes ----------------------------------------------------------------------------------

Call = Callable[[World, str, dict[str, str]], Awaitable[Any]]


@dataclass
class Route:
    name: str
    call: Call
    expected: dict[str, Any]


async def status_of(world: World, method: str, path: str, headers: dict[str, str], **kwargs: Any) -> int:
    # A fresh client per call: no cookie jar may carry one role's session into another's.

    async with httpx.AsyncClient(base_url=world.server.url, timeout=30) as client:
        response = await client.request(method, path, headers=headers, **kwargs)
    if response.status_code >= 400:
        assert response.headers["content-type"] == "application/problem+json", response.text
    return response.status_code


async def json_of(world: World, path: str, headers: dict[str, str], **kwargs: Any) -> tuple[int, Any]:

    async with httpx.AsyncClient(base_url=world.server.url, timeout=30) as client:
        response = await client.get(path, headers=headers, **kwargs)
    return response.status_code, response.json()


def simple(
    method: str, path: Callable[[World], str], body: Callable[[World, str], Any] | None = None
) -> Call:
    async def call(world: World, role: str, headers: dict[str, str]) -> int:
        kwargs = {"json": body(world, role)} if body else {}
        return await status_of(world, method, path(world), headers, **kwargs)

    return call


def org_path(suffix: str = "") -> Callable[[World], str]:
    return lambda world: f"/organizations/{world.org['id']}{suffix}"


async def delete_org(world: World, role: str, headers: dict[str, str]) -> int:
    target = await world.fresh_org()
    return await status_of(world, "DELETE", f"/organizations/{target['id']}", headers)


async def create_project_in_fresh_org(world: World, role: str, headers: dict[str, str]) -> int:
    """In an org of its own: the world's org keeps exactly its two projects."""
    target = await world.fresh_org()
    return await status_of(
        world, "POST", f"/organizations/{target['id']}/projects", headers, json={"name": "P"}
    )


async def sign_out(world: World, role: str, headers: dict[str, str]) -> Any:
    fresh = await world.fresh_session(role)
    status = await status_of(world, "POST", "/auth/sign-out", fresh)
    if status == 204:  # and that token is dead at once
        return (status, await status_of(world, "GET", "/me", fresh))
    return status


async def list_sessions(world: World, role: str, headers: dict[str, str]) -> Any:
    status, body = await json_of(world, "/me/sessions", headers)
    if status != 200:
        return status
    return (status, sum(item["current"] for item in body["items"]))  # exactly its own is current


def _token(headers: dict[str, str]) -> str:
    if "Cookie" in headers:
        return headers["Cookie"].partition("=")[2]
    return headers["Authorization"].removeprefix("Bearer ")


async def end_one_session(world: World, role: str, headers: dict[str, str]) -> Any:
    """The role ends another session of its own user; that token is dead at once."""
    if role in UNAUTHENTICATED:
        return await status_of(world, "DELETE", "/me/sessions/ses_unknown", headers)
    other = await world.fresh_session(role)
    _, body = await json_of(world, "/me/sessions", other)
    [session_id] = [item["id"] for item in body["items"] if item["current"]]
    status = await status_of(world, "DELETE", f"/me/sessions/{session_id}", headers)
    return (status, await status_of(world, "GET", "/me", other))


async def end_other_sessions(world: World, role: str, headers: dict[str, str]) -> Any:
    """Signs out everywhere else from a fresh session, which then stands in for the
    role's token in the world (the world's own token is one of those ended)."""
    if role in UNAUTHENTICATED:
        return await status_of(world, "DELETE", "/me/sessions", headers)
    keeper, ended = await world.fresh_session(role), await world.fresh_session(role)
    status = await status_of(world, "DELETE", "/me/sessions", keeper)
    if status == 204:
        user = world.user_of(role)
        user.token = _token(keeper)
        for other in ROLES:
            if other not in UNAUTHENTICATED and world.user_of(other) is user:
                world.tokens[other] = _token(keeper)
    return (status, await status_of(world, "GET", "/me", ended), await status_of(world, "GET", "/me", keeper))


async def add_membership(world: World, role: str, headers: dict[str, str]) -> int:
    # Those who may add one add a real user each; the others name no one (a wrongful 201
    # would show as a 404 for the unknown email, so it cannot hide, nor change the world).
    spare = {"org admin": world.spares[0], "system admin": world.spares[1]}
    body = {"email": spare.get(role, f"{unique('nobody')}@example.test"), "role": "member", "projectId": None}
    return await status_of(world, "POST", f"/organizations/{world.org['id']}/memberships", headers, json=body)


async def delete_membership(world: World, role: str, headers: dict[str, str]) -> int:
    target = await world.fresh_org()
    path = f"/organizations/{target['id']}/memberships/{target['memberMembership']}"
    return await status_of(world, "DELETE", path, headers)


async def delete_page(world: World, role: str, headers: dict[str, str]) -> int:
    page = await world.api.ok(
        "POST",
        "/pages",
        201,
        json={"title": "doomed", "content": ""},
        token=world.users["system admin"].token,
    )
    return await status_of(world, "DELETE", f"/pages/{page['id']}", headers)


async def list_orgs(world: World, role: str, headers: dict[str, str]) -> Any:
    status, body = await json_of(world, "/organizations", headers)
    if status != 200:
        return status
    return (status, world.org["id"] in {o["id"] for o in body["items"]})


async def list_projects(world: World, role: str, headers: dict[str, str]) -> Any:
    status, body = await json_of(world, f"/organizations/{world.org['id']}/projects", headers)
    if status != 200:
        return status
    names = {p: k for k, p in world.projects.items()}
    return (status, sorted(names[p["id"]] for p in body["items"]))


def seen_scopes(world: World, entity_ids: list[str]) -> list[str]:
    names = {a: k for k, a in world.attachments.items()}
    return sorted(names[e] for e in entity_ids)


async def org_stream_json(world: World, role: str, headers: dict[str, str]) -> Any:
    status, body = await json_of(world, f"/organizations/{world.org['id']}/sync/stream", headers)
    if status != 200:
        return status
    return (status, seen_scopes(world, [m["entityId"] for m in body["activities"]]))


async def org_stream_sse(world: World, role: str, headers: dict[str, str]) -> Any:
    path = f"/organizations/{world.org['id']}/sync/stream?offset=-1&live=sse"
    stream = await open_stream(world.server.port, path, headers=headers, ready=False)
    try:
        await stream.until(lambda s: s.status not in (0, 200) or bool(s.offsets))
    finally:
        stream.abort()
    if stream.status != 200:
        return stream.status
    return (200, seen_scopes(world, [c.message["entityId"] for c in stream.changes]))


async def pages_stream_sse(world: World, role: str, headers: dict[str, str]) -> Any:
    stream = await open_stream(
        world.server.port, "/pages/stream?offset=now&live=sse", headers=headers, ready=False
    )
    try:
        await stream.until(lambda s: s.status not in (0, 200) or bool(s.offsets))
    finally:
        stream.abort()
    return stream.status


def sign_in_body(world: World, role: str) -> dict[str, str]:
    return {"email": world.users["org member"].email, "password": PASSWORD}


def sign_up_body(world: World, role: str) -> dict[str, str]:
    return {"email": f"{unique('su')}@example.test", "password": PASSWORD, "name": "N"}


def new_org_body(world: World, role: str) -> dict[str, str]:
    return {"name": "N", "slug": unique("n-")}


ALL_SCOPES = ["p1", "p2", "unscoped"]
SIGNED_OUT = (204, 401)
EVERYWHERE_ELSE = (204, 401, 200)  # the other session ended, the caller's own kept

ROUTES = [
    # Public: credentials, good or bad, change nothing.
    Route("POST /auth/sign-up", simple("POST", lambda w: "/auth/sign-up", sign_up_body), everyone(201)),
    Route("POST /auth/sign-in", simple("POST", lambda w: "/auth/sign-in", sign_in_body), everyone(200)),
    Route("GET /pages", simple("GET", lambda w: "/pages"), everyone(200)),
    Route("GET /pages/{page_id}", simple("GET", lambda w: f"/pages/{w.page['id']}"), everyone(200)),
    Route("GET /pages/stream", simple("GET", lambda w: "/pages/stream"), everyone(200)),
    Route("GET /pages/stream (SSE)", pages_stream_sse, everyone(200)),
    Route("GET /health", simple("GET", lambda w: "/health"), everyone(200)),
    Route("GET /metrics", simple("GET", lambda w: "/metrics"), everyone(200)),
    Route("GET /openapi.json", simple("GET", lambda w: "/openapi.json"), everyone(200)),
    # System admins only: each organization's subscriber count tells who is active.
    Route(
        "GET /admin/streams",
        simple("GET", lambda w: "/admin/streams"),
        row(outsider=403, project=403, member=403, admin=403, system=200),
    ),
    # Any signed-in user.
    Route(
        "GET /me",
        simple("GET", lambda w: "/me"),
        row(outsider=200, project=200, member=200, admin=200, system=200),
    ),
    Route(
        "GET /me/sessions",
        list_sessions,
        row(outsider=(200, 1), project=(200, 1), member=(200, 1), admin=(200, 1), system=(200, 1)),
    ),
    Route(
        "DELETE /me/sessions/{session_id}",
        end_one_session,
        row(outsider=SIGNED_OUT, project=SIGNED_OUT, member=SIGNED_OUT, admin=SIGNED_OUT, system=SIGNED_OUT),
    ),
    Route(
        "DELETE /me/sessions",
        end_other_sessions,
        row(
            outsider=EVERYWHERE_ELSE,
            project=EVERYWHERE_ELSE,
            member=EVERYWHERE_ELSE,
            admin=EVERYWHERE_ELSE,
            system=EVERYWHERE_ELSE,
        ),
    ),
    Route(
        "POST /auth/sign-out",
        sign_out,
        row(outsider=SIGNED_OUT, project=SIGNED_OUT, member=SIGNED_OUT, admin=SIGNED_OUT, system=SIGNED_OUT),
    ),
    Route(
        "GET /organizations",
        list_orgs,
        row(
            outsider=(200, False),
            project=(200, True),
            member=(200, True),
            admin=(200, True),
            system=(200, True),
        ),
    ),
    Route(
        "POST /organizations",
        simple("POST", lambda w: "/organizations", new_org_body),
        row(outsider=201, project=201, member=201, admin=201, system=201),
    ),
    # The organization: outsiders cannot tell it exists.
    Route(
        "GET /organizations/{org}",
        simple("GET", org_path()),
        row(outsider=404, project=200, member=200, admin=200, system=200),
    ),
    Route(
        "DELETE /organizations/{org}",
        delete_org,
        row(outsider=404, project=403, member=403, admin=204, system=204),
    ),
    Route(
        "POST /organizations/{org}/projects",
        create_project_in_fresh_org,
        row(outsider=404, project=403, member=403, admin=201, system=201),
    ),
    Route(
        "GET /organizations/{org}/projects",
        list_projects,
        row(
            outsider=404,
            project=(200, ["p1"]),
            member=(200, []),
            admin=(200, ["p1", "p2"]),
            system=(200, ["p1", "p2"]),
        ),
    ),
    Route(
        "GET /organizations/{org}/memberships",
        simple("GET", org_path("/memberships")),
        row(outsider=404, project=403, member=403, admin=200, system=200),
    ),
    Route(
        "POST /organizations/{org}/memberships",
        add_membership,
        row(outsider=404, project=403, member=403, admin=201, system=201),
    ),
    Route(
        "PATCH /organizations/{org}/memberships/{membership_id}",
        simple(
            "PATCH",
            lambda w: f"/organizations/{w.org['id']}/memberships/{w.patchable_membership}",
            lambda w, r: {"role": "member"},
        ),
        row(outsider=404, project=403, member=403, admin=200, system=200),
    ),
    Route(
        "DELETE /organizations/{org}/memberships/{membership_id}",
        delete_membership,
        row(outsider=404, project=403, member=403, admin=204, system=204),
    ),
    # The org stream: who may open it, and what each one sees in it.
    Route(
        "GET /organizations/{org}/sync/stream",
        org_stream_json,
        row(
            outsider=404,
            project=(200, ["p1"]),
            member=(200, ["unscoped"]),
            admin=(200, ALL_SCOPES),
            system=(200, ALL_SCOPES),
        ),
    ),
    Route(
        "GET /organizations/{org}/sync/stream (SSE)",
        org_stream_sse,
        row(
            outsider=404,
            project=(200, ["p1"]),
            member=(200, ["unscoped"]),
            admin=(200, ALL_SCOPES),
            system=(200, ALL_SCOPES),
        ),
    ),
    # Pages: everyone reads, system admins write.
    Route(
        "POST /pages",
        simple("POST", lambda w: "/pages", lambda w, r: {"title": "t", "content": "c"}),
        row(outsider=403, project=403, member=403, admin=403, system=201),
    ),
    Route(
        "PATCH /pages/{page_id}",
        simple("PATCH", lambda w: f"/pages/{w.page['id']}", lambda w, r: {"content": unique("c")}),
        row(outsider=403, project=403, member=403, admin=403, system=200),
    ),
    Route(
        "DELETE /pages/{page_id}",
        delete_page,
        row(outsider=403, project=403, member=403, admin=403, system=204),
    ),
]


@pytest.mark.parametrize("route", ROUTES, ids=[r.name for r in ROUTES])
async def test_every_role_gets_exactly_what_the_contract_says(world: World, route: Route) -> None:
    actual = {}
    for role in ROLES:
        actual[role] = await route.call(world, role, world.credentials(role))
    assert actual == route.expected


async def test_the_matrix_covers_every_documented_operation(world: World) -> None:
    """A new route must join the matrix (attachments are in tests/api/test_attachments.py)."""
    document = await world.api.ok("GET", "/openapi.json")
    documented = {f"{method.upper()} {path}" for path, item in document["paths"].items() for method in item}
    covered = {route.name.removesuffix(" (SSE)") for route in ROUTES}
    assert {name for name in documented if "/attachments" not in name} - covered == set()
