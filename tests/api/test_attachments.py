"""Attachments: CRUD, validation, and the permission matrix on every read and write."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio

from harness import Api, User

from .support import (
    ATTACHMENT_KEYS,
    TIMESTAMP,
    add_member,
    assert_problem,
    create_org,
    create_project,
)

ROLES = (
    "org admin",
    "org member",
    "project member",
    "project admin",
    "org + project member",
    "outsider",
    "system admin",
)
SCOPES = ("unscoped", "p1", "p2")

#: Who may read (and so write) attachments in which scope; the contract's permission rules.
READABLE: dict[str, set[str]] = {
    "org admin": {"unscoped", "p1", "p2"},
    "org member": {"unscoped"},
    "project member": {"p1"},
    "project admin": {"p1"},
    "org + project member": {"unscoped", "p1"},
    "outsider": set(),
    "system admin": {"unscoped", "p1", "p2"},
}


@dataclass
class World:
    """One organization with two projects, and a user in every position the rules name."""

    api: Api
    org: dict[str, Any]
    projects: dict[str, str | None]
    users: dict[str, User]

    @property
    def owner(self) -> User:
        return self.users["org admin"]

    def path(self, suffix: str = "") -> str:
        return f"/organizations/{self.org['id']}/attachments{suffix}"

    async def attachment(self, scope: str, **fields: Any) -> dict[str, Any]:
        """An attachment made by the org admin in ``scope``."""
        body = {"name": f"{scope}.pdf", "projectId": self.projects[scope], **fields}
        made: dict[str, Any] = await self.api.ok("POST", self.path(), 201, json=body, token=self.owner.token)
        return made


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def world(client: Api, system_admin: User) -> AsyncIterator[World]:
    users = {role: await client.sign_up(name=role) for role in ROLES if role != "system admin"}
    users["system admin"] = system_admin
    owner = users["org admin"].token
    org = await create_org(client, owner)
    p1 = (await create_project(client, owner, org["id"]))["id"]
    p2 = (await create_project(client, owner, org["id"]))["id"]
    await add_member(client, owner, org["id"], users["org member"].email)
    await add_member(client, owner, org["id"], users["project member"].email, "member", p1)
    await add_member(client, owner, org["id"], users["project admin"].email, "admin", p1)
    await add_member(client, owner, org["id"], users["org + project member"].email)
    await add_member(client, owner, org["id"], users["org + project member"].email, "member", p1)
    # The outsider belongs to another organization, which must not help.
    await create_org(client, users["outsider"].token)
    yield World(client, org, {"unscoped": None, "p1": p1, "p2": p2}, users)


# -- CRUD --------------------------------------------------------------------------------------


async def test_create_read_update_delete(world: World) -> None:
    api, owner = world.api, world.owner
    response = await api.request("POST", world.path(), json={"name": "plan.pdf"}, token=owner.token)
    assert response.status_code == 201, response.text
    created = response.json()
    assert set(created) == ATTACHMENT_KEYS
    assert created["organizationId"] == world.org["id"]
    assert created["name"] == "plan.pdf"
    assert created["projectId"] is created["url"] is created["contentType"] is created["size"] is None
    assert created["createdBy"] == owner.id
    assert TIMESTAMP.match(created["createdAt"])
    assert created["updatedAt"] == created["createdAt"]

    item = world.path(f"/{created['id']}")
    assert await api.ok("GET", item, token=owner.token) == created
    assert created in (await api.ok("GET", world.path(), token=owner.token))["items"]
    by_slug = f"/organizations/{world.org['slug']}/attachments/{created['id']}"
    assert await api.ok("GET", by_slug, token=owner.token) == created

    changes = {
        "name": "plan-v2.pdf",
        "url": "https://files.example/p.pdf",
        "contentType": "application/pdf",
        "size": 42,
    }
    updated = await api.ok("PATCH", item, json=changes, token=owner.token)
    assert updated == {**created, **changes, "updatedAt": updated["updatedAt"]}
    assert updated["updatedAt"] >= created["updatedAt"]
    assert await api.ok("GET", item, token=owner.token) == updated
    cleared = await api.ok("PATCH", item, json={"url": None, "size": None}, token=owner.token)
    assert (cleared["url"], cleared["size"], cleared["name"]) == (None, None, "plan-v2.pdf")

    response = await api.request("DELETE", item, token=owner.token)
    assert response.status_code == 204
    assert response.content == b""
    assert_problem(await api.request("GET", item, token=owner.token), 404, "not_found")
    assert_problem(await api.request("PATCH", item, json={"name": "x"}, token=owner.token), 404, "not_found")
    assert_problem(await api.request("DELETE", item, token=owner.token), 404, "not_found")


async def test_create_with_every_field(world: World) -> None:
    body = {
        "name": "deck.key",
        "url": "https://files.example/deck",
        "contentType": "application/x-iwork-keynote-sffkey",
        "size": 2**40,
        "projectId": world.projects["p1"],
    }
    created = await world.api.ok("POST", world.path(), 201, json=body, token=world.owner.token)
    assert {k: created[k] for k in body} == body


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": ""},
        {"name": None},
        {"name": "x" * 501},
        {"name": "x", "size": -1},
        {"name": "x", "size": 10**30},
        {"name": "x", "size": "big"},
        {"name": "x", "colour": "red"},
        {"name": "x", "tx": {"transactionId": "t"}},
        {"name": "x", "tx": {"transactionId": "t" * 65, "sourceId": "s"}},
        {"name": "x", "tx": {"transactionId": "t", "sourceId": "s" * 65}},
    ],
)
async def test_create_validates_its_body(world: World, body: dict[str, Any]) -> None:
    response = await world.api.request("POST", world.path(), json=body, token=world.owner.token)
    assert_problem(response, 422, "validation_error")


@pytest.mark.parametrize("body", [{"name": None}, {"name": ""}, {"size": -5}, {"owner": "me"}])
async def test_update_validates_its_body(world: World, body: dict[str, Any]) -> None:
    attachment = await world.attachment("unscoped")
    response = await world.api.request(
        "PATCH", world.path(f"/{attachment['id']}"), json=body, token=world.owner.token
    )
    assert_problem(response, 422, "validation_error")
    assert (
        await world.api.ok("GET", world.path(f"/{attachment['id']}"), token=world.owner.token) == attachment
    )


async def test_projects_must_belong_to_the_organization(world: World) -> None:
    api, owner = world.api, world.owner
    foreign_org = await create_org(api, owner.token)
    foreign = await create_project(api, owner.token, foreign_org["id"])
    for project_id in (foreign["id"], "prj_missing"):
        response = await api.request(
            "POST", world.path(), json={"name": "x", "projectId": project_id}, token=owner.token
        )
        assert_problem(response, 404, "not_found")
        attachment = await world.attachment("unscoped")
        response = await api.request(
            "PATCH", world.path(f"/{attachment['id']}"), json={"projectId": project_id}, token=owner.token
        )
        assert_problem(response, 404, "not_found")


async def test_an_attachment_is_only_reachable_through_its_organization(world: World) -> None:
    api, owner = world.api, world.owner
    attachment = await world.attachment("unscoped")
    other = await create_org(api, owner.token)
    path = f"/organizations/{other['id']}/attachments/{attachment['id']}"
    assert_problem(await api.request("GET", path, token=owner.token), 404, "not_found")
    assert_problem(await api.request("PATCH", path, json={"name": "x"}, token=owner.token), 404, "not_found")
    assert_problem(await api.request("DELETE", path, token=owner.token), 404, "not_found")
    listed = await api.ok("GET", f"/organizations/{other['id']}/attachments", token=owner.token)
    assert listed == {"items": [], "nextCursor": None, "hasMore": False}


async def test_list_filters_by_project(world: World) -> None:
    api, owner = world.api, world.owner
    made = {scope: await world.attachment(scope) for scope in SCOPES}
    for scope in ("p1", "p2"):
        listed = await api.ok(
            "GET", world.path(), params={"projectId": world.projects[scope]}, token=owner.token
        )
        assert listed["items"]
        assert all(item["projectId"] == world.projects[scope] for item in listed["items"])
        assert made[scope] in listed["items"]
    everything = (await api.ok("GET", world.path(), token=owner.token))["items"]
    assert all(a in everything for a in made.values())
    unknown = await api.ok("GET", world.path(), params={"projectId": "prj_unknown"}, token=owner.token)
    assert unknown["items"] == []


# -- paging ------------------------------------------------------------------------------------


async def pages_of(api: Api, path: str, token: str, **params: str) -> list[list[dict[str, Any]]]:
    """Every page of a list, following ``nextCursor`` while ``hasMore``."""
    pages: list[list[dict[str, Any]]] = []
    cursor: str | None = None
    for _ in range(100):
        query = {**params, **({"cursor": cursor} if cursor else {})}
        page = await api.ok("GET", path, params=query, token=token)
        assert set(page) == {"items", "nextCursor", "hasMore"}
        pages.append(page["items"])
        if not page["hasMore"]:
            assert page["nextCursor"] is None
            return pages
        assert isinstance(page["nextCursor"], str)
        cursor = page["nextCursor"]
    raise AssertionError("the list never ended")


async def test_the_list_pages_through_what_the_caller_may_read_in_full_pages(
    client: Api, world: World
) -> None:
    """The permission filter is in the query, not applied to a page afterwards: every page
    but the last is full of readable attachments, however many unreadable ones lie between."""
    owner = await client.sign_up()
    member = await client.sign_up()
    org = await create_org(client, owner.token)
    project = (await create_project(client, owner.token, org["id"]))["id"]
    await add_member(client, owner.token, org["id"], member.email)  # reads unscoped ones only
    path = f"/organizations/{org['id']}/attachments"
    made = []
    for n in range(21):
        body = {"name": f"a{n}", "projectId": None if n % 3 == 0 else project}
        made.append(await client.ok("POST", path, 201, json=body, token=owner.token))
    readable = [a for a in made if a["projectId"] is None]
    pages = await pages_of(client, path, member.token, limit="2")
    assert [len(p) for p in pages] == [2, 2, 2, 1]
    assert [a for p in pages for a in p] == readable  # oldest first, each once
    everything = await pages_of(client, path, owner.token, limit="5")
    assert [len(p) for p in everything] == [5, 5, 5, 5, 1]
    assert [a for p in everything for a in p] == made
    in_project = await pages_of(client, path, owner.token, limit="4", projectId=project)
    assert [a for p in in_project for a in p] == [a for a in made if a["projectId"] == project]
    assert await pages_of(client, path, member.token, projectId=project) == [[]]
    # Without a limit, a list this size is one page: what clients that predate paging get.
    assert await pages_of(client, path, owner.token) == [made]


async def test_a_cursor_outlives_the_attachment_it_points_at(client: Api) -> None:
    owner = await client.sign_up()
    org = await create_org(client, owner.token)
    path = f"/organizations/{org['id']}/attachments"
    made = [await client.ok("POST", path, 201, json={"name": f"n{n}"}, token=owner.token) for n in range(4)]
    first = await client.ok("GET", path, params={"limit": "2"}, token=owner.token)
    assert first["items"] == made[:2]
    await client.ok("DELETE", f"{path}/{made[1]['id']}", 204, token=owner.token)
    added = await client.ok("POST", path, 201, json={"name": "late"}, token=owner.token)
    rest = await client.ok("GET", path, params={"cursor": first["nextCursor"]}, token=owner.token)
    assert rest == {"items": [*made[2:], added], "nextCursor": None, "hasMore": False}


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "0"},
        {"limit": "1001"},
        {"limit": "ten"},
        {"limit": "-1"},
        {"cursor": "not-a-cursor"},
        {"cursor": "bm90fGE"},  # base64 of "not|a": no time in it
        {"cursor": "x" * 201},
    ],
)
async def test_a_malformed_limit_or_cursor_is_a_400_naming_it(world: World, params: dict[str, str]) -> None:
    response = await world.api.request("GET", world.path(), params=params, token=world.owner.token)
    body = assert_problem(response, 400, "bad_request")
    assert next(iter(params)) in body["detail"]


# -- the permission matrix ---------------------------------------------------------------------


def expected(role: str, scope: str) -> bool:
    return scope in READABLE[role]


@pytest.mark.parametrize("scope", SCOPES)
@pytest.mark.parametrize("role", ROLES)
async def test_reads_follow_the_matrix(world: World, role: str, scope: str) -> None:
    api, caller = world.api, world.users[role]
    attachment = await world.attachment(scope)
    single = await api.request("GET", world.path(f"/{attachment['id']}"), token=caller.token)
    listing = await api.request("GET", world.path(), token=caller.token)
    filtered = await api.request(
        "GET", world.path(), params={"projectId": world.projects[scope] or ""}, token=caller.token
    )
    if role == "outsider":
        for response in (single, listing, filtered):
            assert_problem(response, 404, "not_found")
        return
    if expected(role, scope):
        assert single.json() == attachment
    else:
        assert_problem(single, 404, "not_found")
    assert listing.status_code == 200
    assert (attachment in listing.json()["items"]) is expected(role, scope)
    assert filtered.status_code == 200
    readable = READABLE[role]
    for item in listing.json()["items"]:
        item_scope = next(s for s, p in world.projects.items() if p == item["projectId"])
        assert item_scope in readable, (role, item)
    if scope != "unscoped":
        assert (attachment in filtered.json()["items"]) is expected(role, scope)


@pytest.mark.parametrize("scope", SCOPES)
@pytest.mark.parametrize("role", ROLES)
async def test_writes_follow_the_matrix(world: World, role: str, scope: str) -> None:
    api, caller, owner = world.api, world.users[role], world.owner
    attachment = await world.attachment(scope)
    item = world.path(f"/{attachment['id']}")
    allowed = expected(role, scope)
    hidden = 404  # a write to what the caller cannot read is a 404: no existence oracle

    create = await api.request(
        "POST", world.path(), json={"name": "mine", "projectId": world.projects[scope]}, token=caller.token
    )
    patch = await api.request("PATCH", item, json={"name": f"renamed by {role}"}, token=caller.token)
    if role == "outsider":
        assert_problem(create, 404, "not_found")
    elif allowed:
        assert create.status_code == 201, create.text
        assert create.json()["createdBy"] == caller.id
    else:
        assert_problem(create, 403, "forbidden")
    if allowed:
        assert patch.status_code == 200, patch.text
        assert patch.json()["name"] == f"renamed by {role}"
    else:
        assert_problem(patch, hidden, "not_found")
        assert await api.ok("GET", item, token=owner.token) == attachment

    delete = await api.request("DELETE", item, token=caller.token)
    if allowed:
        assert delete.status_code == 204
        assert_problem(await api.request("GET", item, token=owner.token), 404, "not_found")
    else:
        assert_problem(delete, hidden, "not_found")
        assert (await api.ok("GET", item, token=owner.token))["id"] == attachment["id"]


@pytest.mark.parametrize(
    ("role", "source", "target", "status"),
    [
        ("project member", "p1", "p2", 403),
        ("project member", "p1", "unscoped", 403),
        ("org member", "unscoped", "p1", 403),
        ("org + project member", "p1", "unscoped", 200),
        ("org + project member", "unscoped", "p1", 200),
        ("org + project member", "p1", "p2", 403),
        ("org admin", "p1", "p2", 200),
        ("system admin", "p2", "unscoped", 200),
    ],
)
async def test_moving_needs_write_access_to_both_scopes(
    world: World, role: str, source: str, target: str, status: int
) -> None:
    attachment = await world.attachment(source)
    item = world.path(f"/{attachment['id']}")
    response = await world.api.request(
        "PATCH", item, json={"projectId": world.projects[target]}, token=world.users[role].token
    )
    after = await world.api.ok("GET", item, token=world.owner.token)
    if status == 200:
        assert response.status_code == 200, response.text
        assert response.json()["projectId"] == world.projects[target] == after["projectId"]
    else:
        assert_problem(response, status, "forbidden")
        assert after == attachment


async def test_a_membership_change_applies_to_the_next_request(world: World, client: Api) -> None:
    api, owner = world.api, world.owner
    newcomer = await client.sign_up()
    attachment = await world.attachment("p2")
    item = world.path(f"/{attachment['id']}")
    assert_problem(await api.request("GET", item, token=newcomer.token), 404, "not_found")
    membership = await add_member(
        api, owner.token, world.org["id"], newcomer.email, "member", world.projects["p2"]
    )
    assert await api.ok("GET", item, token=newcomer.token) == attachment
    await api.ok(
        "DELETE", f"/organizations/{world.org['id']}/memberships/{membership['id']}", 204, token=owner.token
    )
    assert_problem(await api.request("GET", item, token=newcomer.token), 404, "not_found")
