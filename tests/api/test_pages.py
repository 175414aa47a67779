"""Pages: public to read, written by system admins only."""

from __future__ import annotations

from typing import Any

import pytest
import pytest_asyncio

from harness import Api, User, unique

from .support import PAGE_KEYS, TIMESTAMP, anonymous, assert_problem


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def member(client: Api) -> User:
    """A signed-in user who is not a system admin."""
    return await client.sign_up()


async def new_page(api: Api, admin: User, **fields: Any) -> dict[str, Any]:
    body = {"title": unique("Title "), "content": "Hello", **fields}
    page: dict[str, Any] = await api.ok("POST", "/pages", 201, json=body, token=admin.token)
    return page


async def test_system_admins_write_pages_and_anyone_reads_them(api: Api, system_admin: User) -> None:
    response = await api.request(
        "POST", "/pages", json={"title": "Welcome", "content": "# Hi"}, token=system_admin.token
    )
    assert response.status_code == 201, response.text
    page = response.json()
    assert set(page) == PAGE_KEYS
    assert (page["title"], page["content"], page["createdBy"]) == ("Welcome", "# Hi", system_admin.id)
    assert TIMESTAMP.match(page["createdAt"])
    assert page["updatedAt"] == page["createdAt"]

    async with anonymous(api) as public:
        single = await public.get(f"/pages/{page['id']}")
        assert single.status_code == 200
        assert single.json() == page
        listing = await public.get("/pages")
        assert listing.status_code == 200
        assert set(listing.json()) == {"items"}
        assert page in listing.json()["items"]

    updated = await api.ok(
        "PATCH", f"/pages/{page['id']}", json={"content": "# Hello"}, token=system_admin.token
    )
    assert updated == {**page, "content": "# Hello", "updatedAt": updated["updatedAt"]}
    assert updated["updatedAt"] >= page["updatedAt"]
    assert await api.ok("GET", f"/pages/{page['id']}") == updated

    response = await api.request("DELETE", f"/pages/{page['id']}", token=system_admin.token)
    assert response.status_code == 204
    assert response.content == b""
    assert_problem(await api.request("GET", f"/pages/{page['id']}"), 404, "not_found")
    assert_problem(
        await api.request("PATCH", f"/pages/{page['id']}", json={"title": "x"}, token=system_admin.token),
        404,
        "not_found",
    )
    assert_problem(
        await api.request("DELETE", f"/pages/{page['id']}", token=system_admin.token), 404, "not_found"
    )


async def test_an_empty_content_is_a_page_too(api: Api, system_admin: User) -> None:
    page = await new_page(api, system_admin, content="")
    assert page["content"] == ""


async def test_non_admin_writes_are_forbidden(api: Api, system_admin: User, member: User) -> None:
    page = await new_page(api, system_admin)
    item = f"/pages/{page['id']}"
    body = {"title": "Mine", "content": "now"}
    assert_problem(await api.request("POST", "/pages", json=body, token=member.token), 403, "forbidden")
    assert_problem(
        await api.request("PATCH", item, json={"title": "Mine"}, token=member.token), 403, "forbidden"
    )
    assert_problem(await api.request("DELETE", item, token=member.token), 403, "forbidden")
    assert await api.ok("GET", item) == page


async def test_org_admins_are_not_page_writers(api: Api, member: User) -> None:
    await api.ok("POST", "/organizations", 201, json={"name": "A", "slug": unique("pg-")}, token=member.token)
    response = await api.request("POST", "/pages", json={"title": "t", "content": "c"}, token=member.token)
    assert_problem(response, 403, "forbidden")


async def test_anonymous_writes_are_unauthorized(api: Api, system_admin: User) -> None:
    page = await new_page(api, system_admin)
    item = f"/pages/{page['id']}"
    async with anonymous(api) as public:
        assert_problem(await public.post("/pages", json={"title": "t", "content": "c"}), 401, "unauthorized")
        assert_problem(await public.patch(item, json={"title": "t"}), 401, "unauthorized")
        assert_problem(await public.delete(item), 401, "unauthorized")
    assert await api.ok("GET", item) == page


@pytest.mark.parametrize(
    "body",
    [{}, {"title": "t"}, {"content": "c"}, {"title": "", "content": "c"}, {"title": "t", "content": None}],
)
async def test_create_validates_its_body(api: Api, system_admin: User, body: dict[str, Any]) -> None:
    assert_problem(
        await api.request("POST", "/pages", json=body, token=system_admin.token), 422, "validation_error"
    )


@pytest.mark.parametrize("body", [{"title": None}, {"content": None}, {"title": ""}, {"author": "me"}])
async def test_update_validates_its_body(api: Api, system_admin: User, body: dict[str, Any]) -> None:
    page = await new_page(api, system_admin)
    response = await api.request("PATCH", f"/pages/{page['id']}", json=body, token=system_admin.token)
    assert_problem(response, 422, "validation_error")
    assert await api.ok("GET", f"/pages/{page['id']}") == page


async def test_a_missing_page_is_404(api: Api) -> None:
    assert_problem(await api.request("GET", "/pages/pg_missing"), 404, "not_found")
