"""Organizations, projects and memberships."""

from __future__ import annotations

import pytest
import pytest_asyncio

from harness import Api, User, unique

from .support import (
    MEMBERSHIP_KEYS,
    ORG_KEYS,
    PROJECT_KEYS,
    TIMESTAMP,
    add_member,
    assert_problem,
    create_org,
    create_project,
)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def someone(client: Api) -> User:
    """A user for the tests that only need to be signed in (each sign-up costs a hash)."""
    return await client.sign_up()


# -- organizations -----------------------------------------------------------------------------


async def test_create_organization_makes_the_creator_its_admin(api: Api) -> None:
    user = await api.sign_up()
    slug = unique("acme-")
    response = await api.request(
        "POST", "/organizations", json={"name": "Acme", "slug": slug}, token=user.token
    )
    assert response.status_code == 201, response.text
    org = response.json()
    assert set(org) == ORG_KEYS
    assert (org["name"], org["slug"]) == ("Acme", slug)
    assert TIMESTAMP.match(org["createdAt"])
    [membership] = (await api.ok("GET", "/me", token=user.token))["memberships"]
    assert (membership["organizationId"], membership["role"], membership["projectId"]) == (
        org["id"],
        "admin",
        None,
    )
    assert await api.ok("GET", f"/organizations/{org['id']}", token=user.token) == org
    assert await api.ok("GET", f"/organizations/{slug}", token=user.token) == org


@pytest.mark.parametrize(
    "slug",
    ["a", "-ab", "Abc", "a_b", "a b", "ab.", "é-ab", "ab\n", "", "a" * 50, "ab/cd", "ab\x00"],
)
async def test_slug_rules(api: Api, someone: User, slug: str) -> None:
    response = await api.request(
        "POST", "/organizations", json={"name": "N", "slug": slug}, token=someone.token
    )
    assert_problem(response, 422, "validation_error")


@pytest.mark.parametrize("length", [2, 49])
async def test_slugs_of_the_boundary_lengths_are_accepted(api: Api, someone: User, length: int) -> None:
    slug = ("9" + unique("")).ljust(length, "-")[:length]  # a digit first, a dash may end it
    response = await api.request(
        "POST", "/organizations", json={"name": "N", "slug": slug}, token=someone.token
    )
    # 409 (a two-character slug some other test took) also means the slug passed validation.
    assert response.status_code in (201, 409), response.text


@pytest.mark.parametrize("body", [{"slug": "no-name"}, {"name": "no slug"}, {"name": "", "slug": "x-1"}])
async def test_organization_body_is_validated(api: Api, someone: User, body: dict[str, str]) -> None:
    assert_problem(
        await api.request("POST", "/organizations", json=body, token=someone.token), 422, "validation_error"
    )


async def test_a_taken_slug_is_a_conflict(api: Api) -> None:
    first, second = await api.sign_up(), await api.sign_up()
    org = await create_org(api, first.token)
    for user in (first, second):
        response = await api.request(
            "POST", "/organizations", json={"name": "Again", "slug": org["slug"]}, token=user.token
        )
        assert_problem(response, 409, "conflict")


async def test_the_list_holds_only_my_organizations(api: Api, system_admin: User) -> None:
    alice, bob = await api.sign_up(), await api.sign_up()
    mine = await create_org(api, alice.token)
    theirs = await create_org(api, bob.token)
    listed = await api.ok("GET", "/organizations", token=alice.token)
    assert listed == {"items": [mine]}
    everything = await api.ok("GET", "/organizations", token=system_admin.token)
    ids = [o["id"] for o in everything["items"]]
    assert mine["id"] in ids
    assert theirs["id"] in ids


async def test_the_list_includes_organizations_reached_through_a_project(api: Api) -> None:
    owner, guest = await api.sign_up(), await api.sign_up()
    org = await create_org(api, owner.token)
    project = await create_project(api, owner.token, org["id"])
    await add_member(api, owner.token, org["id"], guest.email, project_id=project["id"])
    assert await api.ok("GET", "/organizations", token=guest.token) == {"items": [org]}


async def test_a_non_member_gets_the_same_404_as_for_a_missing_org(api: Api) -> None:
    owner, outsider = await api.sign_up(), await api.sign_up()
    org = await create_org(api, owner.token)
    missing = unique("missing-")
    hidden = assert_problem(
        await api.request("GET", f"/organizations/{org['slug']}", token=outsider.token), 404, "not_found"
    )
    absent = assert_problem(
        await api.request("GET", f"/organizations/{missing}", token=outsider.token), 404, "not_found"
    )
    # Alike but for the name asked for and the request's own ID (`instance`).
    assert {**hidden, "detail": hidden["detail"].replace(org["slug"], "X"), "instance": None} == {
        **absent,
        "detail": absent["detail"].replace(missing, "X"),
        "instance": None,
    }
    for path in ("projects", "memberships", "attachments"):
        assert_problem(
            await api.request("GET", f"/organizations/{org['id']}/{path}", token=outsider.token),
            404,
            "not_found",
        )


async def test_system_admins_see_every_organization(api: Api, system_admin: User) -> None:
    owner = await api.sign_up()
    org = await create_org(api, owner.token)
    assert await api.ok("GET", f"/organizations/{org['slug']}", token=system_admin.token) == org


async def test_only_org_admins_delete_an_organization(api: Api) -> None:
    owner, member, outsider = await api.sign_up(), await api.sign_up(), await api.sign_up()
    org = await create_org(api, owner.token)
    await add_member(api, owner.token, org["id"], member.email)
    path = f"/organizations/{org['id']}"
    assert_problem(await api.request("DELETE", path, token=member.token), 403, "forbidden")
    assert_problem(await api.request("DELETE", path, token=outsider.token), 404, "not_found")
    response = await api.request("DELETE", f"/organizations/{org['slug']}", token=owner.token)
    assert response.status_code == 204
    assert response.content == b""
    for user in (owner, member):
        assert_problem(await api.request("GET", path, token=user.token), 404, "not_found")
        assert (await api.ok("GET", "/me", token=user.token))["memberships"] == []
    assert_problem(await api.request("DELETE", path, token=owner.token), 404, "not_found")
    # The slug is free again.
    await api.ok(
        "POST", "/organizations", 201, json={"name": "Reborn", "slug": org["slug"]}, token=owner.token
    )


async def test_system_admins_may_delete_any_organization(api: Api, system_admin: User) -> None:
    owner = await api.sign_up()
    org = await create_org(api, owner.token)
    response = await api.request("DELETE", f"/organizations/{org['id']}", token=system_admin.token)
    assert response.status_code == 204
    assert_problem(
        await api.request("GET", f"/organizations/{org['id']}", token=owner.token), 404, "not_found"
    )


# -- projects ----------------------------------------------------------------------------------


async def test_projects_are_created_by_org_admins(api: Api, system_admin: User) -> None:
    owner, member, outsider = await api.sign_up(), await api.sign_up(), await api.sign_up()
    org = await create_org(api, owner.token)
    await add_member(api, owner.token, org["id"], member.email)
    path = f"/organizations/{org['slug']}/projects"
    response = await api.request("POST", path, json={"name": "Roadmap"}, token=owner.token)
    assert response.status_code == 201, response.text
    project = response.json()
    assert set(project) == PROJECT_KEYS
    assert (project["organizationId"], project["name"]) == (org["id"], "Roadmap")
    assert TIMESTAMP.match(project["createdAt"])
    assert_problem(await api.request("POST", path, json={"name": "X"}, token=member.token), 403, "forbidden")
    assert_problem(
        await api.request("POST", path, json={"name": "X"}, token=outsider.token), 404, "not_found"
    )
    assert_problem(
        await api.request("POST", path, json={"name": ""}, token=owner.token), 422, "validation_error"
    )
    await api.ok("POST", path, 201, json={"name": "By root"}, token=system_admin.token)


async def test_projects_list_only_what_the_caller_can_read(api: Api, system_admin: User) -> None:
    owner, member, guest, both = [await api.sign_up() for _ in range(4)]
    org = await create_org(api, owner.token)
    p1 = await create_project(api, owner.token, org["id"])
    p2 = await create_project(api, owner.token, org["id"])
    await add_member(api, owner.token, org["id"], member.email)
    await add_member(api, owner.token, org["id"], guest.email, project_id=p1["id"])
    await add_member(api, owner.token, org["id"], both.email)
    await add_member(api, owner.token, org["id"], both.email, project_id=p2["id"])
    path = f"/organizations/{org['id']}/projects"

    async def listed(user: User) -> list[str]:
        return [p["id"] for p in (await api.ok("GET", path, token=user.token))["items"]]

    assert sorted(await listed(owner)) == sorted([p1["id"], p2["id"]])
    assert sorted(await listed(system_admin)) == sorted([p1["id"], p2["id"]])
    assert await listed(member) == []
    assert await listed(guest) == [p1["id"]]
    assert await listed(both) == [p2["id"]]


# -- memberships -------------------------------------------------------------------------------


async def test_org_admins_manage_memberships(api: Api) -> None:
    owner, newcomer = await api.sign_up(), await api.sign_up()
    org = await create_org(api, owner.token)
    path = f"/organizations/{org['id']}/memberships"
    response = await api.request(
        "POST",
        path,
        json={"email": newcomer.email.upper(), "role": "member", "projectId": None},
        token=owner.token,
    )
    assert response.status_code == 201, response.text
    membership = response.json()
    assert set(membership) == MEMBERSHIP_KEYS
    assert membership["userId"] == newcomer.id
    assert membership["organizationId"] == org["id"]
    assert membership["projectId"] is None
    assert membership["role"] == "member"
    assert TIMESTAMP.match(membership["createdAt"])
    assert await api.ok("GET", f"/organizations/{org['id']}", token=newcomer.token) == org
    assert (await api.ok("GET", "/me", token=newcomer.token))["memberships"] == [membership]

    # A member may not manage the org; promoted to admin, they may.
    assert_problem(
        await api.request(
            "POST", f"/organizations/{org['id']}/projects", json={"name": "P"}, token=newcomer.token
        ),
        403,
        "forbidden",
    )
    patched = await api.ok("PATCH", f"{path}/{membership['id']}", json={"role": "admin"}, token=owner.token)
    assert patched == {**membership, "role": "admin"}
    await api.ok(
        "POST", f"/organizations/{org['id']}/projects", 201, json={"name": "P"}, token=newcomer.token
    )

    response = await api.request("DELETE", f"{path}/{membership['id']}", token=owner.token)
    assert response.status_code == 204
    assert_problem(
        await api.request("GET", f"/organizations/{org['id']}", token=newcomer.token), 404, "not_found"
    )
    assert (await api.ok("GET", "/me", token=newcomer.token))["memberships"] == []


async def test_project_memberships(api: Api) -> None:
    owner, guest = await api.sign_up(), await api.sign_up()
    org = await create_org(api, owner.token)
    project = await create_project(api, owner.token, org["id"])
    membership = await add_member(api, owner.token, org["id"], guest.email, "admin", project["id"])
    assert (membership["projectId"], membership["role"]) == (project["id"], "admin")
    # A project admin is not an org admin.
    assert_problem(
        await api.request(
            "POST",
            f"/organizations/{org['id']}/memberships",
            json={"email": owner.email, "role": "member"},
            token=guest.token,
        ),
        403,
        "forbidden",
    )
    other_org = await create_org(api, owner.token)
    foreign = await create_project(api, owner.token, other_org["id"])
    response = await api.request(
        "POST",
        f"/organizations/{org['id']}/memberships",
        json={"email": guest.email, "role": "member", "projectId": foreign["id"]},
        token=owner.token,
    )
    assert_problem(response, 404, "not_found")


async def test_membership_errors(api: Api) -> None:
    owner, member, outsider = await api.sign_up(), await api.sign_up(), await api.sign_up()
    org = await create_org(api, owner.token)
    mine = await add_member(api, owner.token, org["id"], member.email)
    path = f"/organizations/{org['id']}/memberships"
    unknown = {"email": f"{unique('nobody')}@example.test", "role": "member", "projectId": None}
    assert_problem(await api.request("POST", path, json=unknown, token=owner.token), 404, "not_found")
    valid = {"email": outsider.email, "role": "member"}
    assert_problem(await api.request("POST", path, json=valid, token=member.token), 403, "forbidden")
    assert_problem(await api.request("POST", path, json=valid, token=outsider.token), 404, "not_found")
    for bad in ({"email": outsider.email, "role": "owner"}, {"email": outsider.email}, {"role": "member"}):
        assert_problem(await api.request("POST", path, json=bad, token=owner.token), 422, "validation_error")

    item = f"{path}/{mine['id']}"
    assert_problem(
        await api.request("PATCH", item, json={"role": "admin"}, token=member.token), 403, "forbidden"
    )
    assert_problem(await api.request("DELETE", item, token=member.token), 403, "forbidden")
    assert_problem(
        await api.request("PATCH", item, json={"role": "boss"}, token=owner.token), 422, "validation_error"
    )
    assert_problem(
        await api.request("PATCH", f"{path}/mem_missing", json={"role": "admin"}, token=owner.token),
        404,
        "not_found",
    )
    assert_problem(await api.request("DELETE", f"{path}/mem_missing", token=owner.token), 404, "not_found")
    # A membership is only reachable through its own organization.
    other = await create_org(api, owner.token)
    assert_problem(
        await api.request(
            "PATCH",
            f"/organizations/{other['id']}/memberships/{mine['id']}",
            json={"role": "admin"},
            token=owner.token,
        ),
        404,
        "not_found",
    )
    assert (await api.ok("GET", "/me", token=member.token))["memberships"] == [mine]


async def test_access_changes_take_effect_on_the_next_request(api: Api) -> None:
    """Callers and organizations are cached in the server; the writes that change them
    clear those caches before they answer."""
    owner, newcomer = await api.sign_up(), await api.sign_up()
    org = await create_org(api, owner.token)
    attachments = f"/organizations/{org['slug']}/attachments"
    assert (await api.request("GET", attachments, token=newcomer.token)).status_code == 404
    await add_member(api, owner.token, org["id"], newcomer.email)
    assert (await api.ok("GET", attachments, token=newcomer.token))["items"] == []
    await api.ok(
        "POST", attachments, 201, json={"name": "a", "url": "https://x.test/a"}, token=newcomer.token
    )
    assert (await api.request("DELETE", f"/organizations/{org['id']}", token=owner.token)).status_code == 204
    for user in (owner, newcomer):
        assert_problem(await api.request("GET", attachments, token=user.token), 404, "not_found")
        assert_problem(
            await api.request(
                "POST", attachments, json={"name": "b", "url": "https://x.test/b"}, token=user.token
            ),
            404,
            "not_found",
        )
