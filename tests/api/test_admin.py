"""``GET /admin/streams``: the server panel's view of open streams, for system admins only."""

from __future__ import annotations

from typing import Any

from harness import Api, Stream, User, unique

from .support import anonymous, assert_problem


async def test_admin_streams_needs_a_caller_and_a_system_admin(api: Api) -> None:
    async with anonymous(api) as nobody:
        assert_problem(await nobody.get("/admin/streams"), 401, "unauthorized")
    member = await api.sign_up()
    assert_problem(await api.request("GET", "/admin/streams", token=member.token), 403, "forbidden")
    # An org admin is not a system admin: other tenants' activity stays hidden from them.
    slug = unique("adm")
    await api.ok("POST", "/organizations", 201, json={"name": "Adm", "slug": slug}, token=member.token)
    assert_problem(await api.request("GET", "/admin/streams", token=member.token), 403, "forbidden")


async def test_admin_streams_lists_open_streams_with_their_subscribers(api: Api, system_admin: User) -> None:
    owner = await api.sign_up()
    slug = unique("adm")
    org = await api.ok(
        "POST", "/organizations", 201, json={"name": "Watched", "slug": slug}, token=owner.token
    )
    org_url = f"/organizations/{slug}/sync/stream?live=sse&offset=now"
    headers = api.headers(owner.token)
    async with Stream(api.client, org_url, headers) as one, Stream(api.client, org_url, headers) as two:
        await one.until_offset()
        await two.until_offset()
        async with Stream(api.client, "/pages/stream?live=sse&offset=now", {}) as pages:
            await pages.until_offset()
            body: dict[str, Any] = await api.ok("GET", "/admin/streams", token=system_admin.token)

    watched = [s for s in body["streams"] if s.get("organizationId") == org["id"]]
    assert watched == [
        {
            "stream": "organization",
            "path": f"/organizations/{slug}/sync/stream",
            "organizationId": org["id"],
            "slug": slug,
            "name": "Watched",
            "subscribers": 2,
        }
    ]
    public = [s for s in body["streams"] if s["stream"] == "pages"]
    assert len(public) == 1
    assert public[0]["subscribers"] >= 1
    assert body["subscribers"] == body["connections"]["open"] >= 3
    assert body["subscribers"] >= sum(s["subscribers"] for s in body["streams"])
    assert body["connections"]["opened"]["org"] >= 2
    assert body["connections"]["opened"]["pages"] >= 1
    assert body["health"]["status"] == "ok"
    assert body["bus"]["status"] == "ok"
    assert int(body["bus"]["logPosition"]) >= 0
    assert body["streamCount"] >= 2
    assert body["truncated"] is False
    counts = [s["subscribers"] for s in body["streams"]]
    assert counts == sorted(counts, reverse=True), "busiest first"
