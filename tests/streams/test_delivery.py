"""Who receives what, and what happens when access changes mid-stream."""

from __future__ import annotations

import orjson
import pytest

from harness import Stream, User

from .conftest import World

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def collect_after(user: User, world: World, after: str) -> list[str]:
    api = user.api()
    page = await api.ok("GET", world.stream_url(f"offset={after}&limit=1000"))
    await api.aclose()
    return [m["entityId"] for m in page["activities"]]


async def test_permission_matrix_on_delivery(world: World) -> None:
    """Each role receives exactly what it may read, live and in catch-up alike."""
    readers = {
        "owner": world.owner,
        "member": world.member,
        "project_member": world.project_member,
        "both": world.both,
    }
    apis = {name: user.api() for name, user in readers.items()}
    streams = {
        name: Stream(api.client, world.stream_url("offset=now&live=sse"), api.headers())
        for name, api in apis.items()
    }
    offsets = {}
    for name, stream in streams.items():
        await stream.__aenter__()
        _, offset = await stream.until_offset()
        offsets[name] = orjson.loads(offset.data)["cursor"]
    unscoped = await world.create("unscoped")
    in_project = await world.create("in project", world.project["id"])
    in_other = await world.create("in other", world.other_project["id"])
    marker = await world.create("marker")
    expected = {
        "owner": [unscoped["id"], in_project["id"], in_other["id"], marker["id"]],
        "member": [unscoped["id"], marker["id"]],
        "project_member": [in_project["id"]],
        "both": [unscoped["id"], in_project["id"], marker["id"]],
    }
    for name, stream in streams.items():
        got = []
        while True:
            event = await stream.next()
            assert event is not None
            got.append(orjson.loads(event.data)["entityId"])
            if got[-1] == expected[name][-1]:
                break
        assert got == expected[name], name
        assert await collect_after(readers[name], world, offsets[name]) == expected[name]
        await stream.close()
    for api in apis.values():
        await api.aclose()


async def test_move_into_a_project_reaches_only_its_readers(world: World) -> None:
    attachment = await world.create("movable")
    api = world.member.api()
    owner = world.owner.api()
    async with Stream(api.client, world.stream_url("offset=now&live=sse"), api.headers()) as stream:
        await stream.until_offset()
        await owner.ok(
            "PATCH",
            f"/organizations/{world.org['id']}/attachments/{attachment['id']}",
            json={"projectId": world.project["id"]},
        )
        marker = await world.create("marker")
        event = await stream.next()
        assert event is not None
        assert orjson.loads(event.data)["entityId"] == marker["id"]
    await api.aclose()
    await owner.aclose()


async def test_membership_removed_mid_stream_leaks_nothing(world: World) -> None:
    owner = world.owner.api()
    memberships = await owner.ok("GET", f"/organizations/{world.org['id']}/memberships")
    member_ship = next(m for m in memberships["items"] if m["userId"] == world.member.id)
    api = world.member.api()
    async with Stream(api.client, world.stream_url("offset=now&live=sse"), api.headers()) as stream:
        await stream.until_offset()
        before = await world.create("before")
        await owner.ok("DELETE", f"/organizations/{world.org['id']}/memberships/{member_ship['id']}", 204)
        await world.create("after")  # must never reach the removed member
        event = await stream.next()
        assert event is not None
        assert orjson.loads(event.data)["entityId"] == before["id"]
        error = await stream.next()
        assert error is not None
        assert error.event == "error"
        assert orjson.loads(error.data)["type"] == "forbidden"
        assert await stream.next() is None  # closed by the server
    response = await api.request("GET", world.stream_url())
    assert response.status_code == 404
    await api.aclose()
    await owner.aclose()


async def test_narrowed_membership_filters_from_the_next_event(world: World) -> None:
    """`both` loses its org membership but keeps the project one: only project events follow."""
    owner = world.owner.api()
    memberships = await owner.ok("GET", f"/organizations/{world.org['id']}/memberships")
    org_ship = next(
        m for m in memberships["items"] if m["userId"] == world.both.id and m["projectId"] is None
    )
    api = world.both.api()
    async with Stream(api.client, world.stream_url("offset=now&live=sse"), api.headers()) as stream:
        await stream.until_offset()
        await owner.ok("DELETE", f"/organizations/{world.org['id']}/memberships/{org_ship['id']}", 204)
        await world.create("unscoped, now hidden")
        visible = await world.create("project", world.project["id"])
        event = await stream.next()
        assert event is not None
        assert event.event == "change"
        assert orjson.loads(event.data)["entityId"] == visible["id"]
    await api.aclose()
    await owner.aclose()


async def test_promotion_widens_the_stream(world: World) -> None:
    owner = world.owner.api()
    memberships = await owner.ok("GET", f"/organizations/{world.org['id']}/memberships")
    ship = next(m for m in memberships["items"] if m["userId"] == world.member.id)
    api = world.member.api()
    async with Stream(api.client, world.stream_url("offset=now&live=sse"), api.headers()) as stream:
        await stream.until_offset()
        await owner.ok(
            "PATCH", f"/organizations/{world.org['id']}/memberships/{ship['id']}", json={"role": "admin"}
        )
        hidden_before = await world.create("other project", world.other_project["id"])
        event = await stream.next()
        assert event is not None
        assert orjson.loads(event.data)["entityId"] == hidden_before["id"]
    await api.aclose()
    await owner.aclose()


async def test_org_deletion_ends_streams(world: World) -> None:
    api = world.member.api()
    owner = world.owner.api()
    async with Stream(api.client, world.stream_url("offset=now&live=sse"), api.headers()) as stream:
        await stream.until_offset()
        await owner.ok("DELETE", f"/organizations/{world.org['id']}", 204)
        error = await stream.next()
        assert error is not None
        assert error.event == "error"
        assert orjson.loads(error.data)["type"] == "forbidden"
        assert await stream.next() is None
    await api.aclose()
    await owner.aclose()


async def test_sign_out_ends_streams_opened_with_the_token(world: World) -> None:
    api = world.member.api()
    other_session = await api.ok(
        "POST", "/auth/sign-in", json={"email": world.member.email, "password": "correct-horse"}
    )
    async with (
        Stream(api.client, world.stream_url("offset=now&live=sse"), api.headers()) as signed_out,
        Stream(
            api.client, world.stream_url("offset=now&live=sse"), api.headers(other_session["token"])
        ) as still_in,
    ):
        await signed_out.until_offset()
        await still_in.until_offset()
        await api.ok("POST", "/auth/sign-out", 204)
        error = await signed_out.next()
        assert error is not None
        assert error.event == "error"
        assert orjson.loads(error.data)["type"] == "forbidden"
        created = await world.create("after sign-out")
        event = await still_in.next()
        assert event is not None
        assert orjson.loads(event.data)["entityId"] == created["id"]
    response = await api.request("GET", world.stream_url())
    assert response.status_code == 401
    await api.aclose()


async def test_entity_types_filter(world: World) -> None:
    created = await world.create("typed")
    api = world.member.api()
    page = await api.ok("GET", world.stream_url("offset=-1&entityTypes=attachment"))
    assert [m["entityId"] for m in page["activities"]][-1] == created["id"]
    await api.aclose()
