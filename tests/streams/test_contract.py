"""The stream endpoints, frame by frame, as the contract describes them."""

from __future__ import annotations

import httpx
import orjson
import pytest

from harness import Api, Stream

from .conftest import World

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_sse_headers_and_frame_order(world: World) -> None:
    first = await world.create("one")
    api = world.member.api()
    async with Stream(api.client, world.stream_url("offset=-1&live=sse"), api.headers()) as stream:
        assert stream.response is not None
        assert stream.response.status_code == 200
        assert stream.response.headers["content-type"].startswith("text/event-stream")
        assert stream.response.headers["cache-control"] == "no-cache"
        assert stream.response.headers["x-accel-buffering"] == "no"
        changes, offset = await stream.until_offset()
        assert [c.event for c in changes] == ["change"]
        message = orjson.loads(changes[0].data)
        assert message["entityId"] == first["id"]
        assert changes[0].id == message["activityId"]
        assert orjson.loads(offset.data) == {"cursor": message["activityId"]}
        second = await world.create("two")
        live = await stream.next()
        assert live is not None
        assert live.event == "change"
        assert orjson.loads(live.data)["entityId"] == second["id"]
        assert int(live.id or 0) > int(message["activityId"])
    await api.aclose()


async def test_retry_hint_comes_first(world: World) -> None:
    api = world.member.api()
    async with api.client.stream("GET", world.stream_url(), headers=api.headers()) as response:
        first = b""
        async for chunk in response.aiter_raw():
            first += chunk
            if b"\n\n" in first:
                break
    assert first.startswith(b"retry: ")
    await api.aclose()


async def test_ping_while_idle(world: World) -> None:
    api = world.member.api()
    async with Stream(api.client, world.stream_url("offset=now&live=sse"), api.headers()) as stream:
        await stream.until_offset()
        event = await stream.events.get()  # the test server pings every second
        assert event is not None
        assert (event.event, event.data) == ("ping", "pong")
    await api.aclose()


async def test_offset_now_sends_nothing_old(world: World) -> None:
    await world.create("old")
    api = world.member.api()
    async with Stream(api.client, world.stream_url("offset=now&live=sse"), api.headers()) as stream:
        changes, offset = await stream.until_offset()
        assert changes == []
        cursor = orjson.loads(offset.data)["cursor"]
        assert cursor is not None
        new = await world.create("new")
        live = await stream.next()
        assert live is not None
        assert orjson.loads(live.data)["entityId"] == new["id"]
    await api.aclose()


async def test_offset_id_and_last_event_id(world: World) -> None:
    a = await world.create("a")
    b = await world.create("b")
    c = await world.create("c")
    api = world.member.api()
    page = await api.ok("GET", world.stream_url("offset=-1"))
    ids = {m["entityId"]: m["activityId"] for m in page["activities"]}
    async with Stream(api.client, world.stream_url(f"offset={ids[a['id']]}&live=sse"), api.headers()) as s:
        changes, _ = await s.until_offset()
        assert [orjson.loads(x.data)["entityId"] for x in changes] == [b["id"], c["id"]]
    headers = {**api.headers(), "Last-Event-ID": ids[b["id"]]}
    async with Stream(api.client, world.stream_url("offset=-1&live=sse"), headers) as s:
        changes, _ = await s.until_offset()
        assert [orjson.loads(x.data)["entityId"] for x in changes] == [c["id"]]
    await api.aclose()


async def test_json_mode_pages_through_everything(world: World) -> None:
    created = [await world.create(f"n{i}") for i in range(5)]
    api = world.member.api()
    seen: list[str] = []
    offset = "-1"
    while True:
        page = await api.ok("GET", world.stream_url(f"offset={offset}&limit=2"))
        assert len(page["activities"]) <= 2
        seen += [m["entityId"] for m in page["activities"]]
        if page["activities"]:
            assert page["cursor"] == page["activities"][-1]["activityId"]
        offset = page["cursor"]
        if not page["hasMore"]:
            break
    assert seen == [c["id"] for c in created]
    empty = await api.ok("GET", world.stream_url(f"offset={offset}"))
    assert empty == {"activities": [], "cursor": offset, "hasMore": False}
    await api.aclose()


async def test_same_bytes_in_json_catch_up_and_live(world: World) -> None:
    api = world.member.api()
    async with Stream(api.client, world.stream_url("offset=now&live=sse"), api.headers()) as live:
        await live.until_offset()
        created = await world.create("same", url="https://x.test/ä", size=3)
        live_event = await live.next()
        assert live_event is not None
    activity_id = live_event.id
    assert activity_id is not None
    before = str(int(activity_id) - 1)
    async with Stream(api.client, world.stream_url(f"offset={before}&live=sse"), api.headers()) as again:
        changes, _ = await again.until_offset()
    response = await api.request("GET", world.stream_url(f"offset={before}&limit=1"))
    raw = response.content
    start = raw.index(b"[") + 1
    json_bytes = raw[start : start + len(live_event.data.encode())]
    assert changes[0].data == live_event.data
    assert json_bytes == live_event.data.encode()
    assert orjson.loads(live_event.data)["data"]["id"] == created["id"]
    await api.aclose()


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("offset=abc", "offset"),
        ("offset=-2", "offset"),
        ("offset=1.5", "offset"),
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=x", "limit"),
        ("entityTypes=nope", "entityTypes"),
        ("entityTypes=page", "entityTypes"),
        ("live=ws", "live"),
    ],
)
async def test_bad_parameters_are_400_naming_them(world: World, query: str, parameter: str) -> None:
    api = world.member.api()
    for mode in ("", "&live=sse") if "live=" not in query else ("",):
        response = await api.request("GET", world.stream_url(query + mode))
        assert response.status_code == 400, response.text
        assert response.headers["content-type"] == "application/problem+json"
        body = response.json()
        assert body["type"] == "bad_request"
        assert parameter in body["detail"]
    await api.aclose()


async def test_bad_last_event_id_is_400(world: World) -> None:
    api = world.member.api()
    response = await api.request("GET", world.stream_url(), headers={"Last-Event-ID": "x1"})
    assert response.status_code == 400
    assert "Last-Event-ID" in response.json()["detail"]
    await api.aclose()


@pytest.mark.parametrize("offset", ["999999999", "9" * 40])
async def test_cursor_beyond_newest_is_must_refetch(world: World, offset: str) -> None:
    api = world.member.api()
    for mode in ("", "&live=sse"):
        response = await api.request("GET", world.stream_url(f"offset={offset}{mode}"))
        assert response.status_code == 409
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["type"] == "must_refetch"
    await api.aclose()


async def test_auth_and_membership_gates(world: World) -> None:
    anonymous = Api(world.server.url)
    response = await anonymous.request("GET", world.stream_url())
    assert response.status_code == 401
    outsider = world.outsider.api()
    for org in (world.org["id"], world.org["slug"], "org_doesnotexist"):
        response = await outsider.request("GET", f"/organizations/{org}/sync/stream?live=sse")
        assert response.status_code == 404
        assert response.json()["type"] == "not_found"
    for api in (anonymous, outsider):
        await api.aclose()


async def test_slug_works_like_id(world: World) -> None:
    api = world.member.api()
    by_slug = await api.ok("GET", f"/organizations/{world.org['slug']}/sync/stream")
    by_id = await api.ok("GET", world.stream_url("offset=-1"))
    assert by_slug == by_id
    await api.aclose()


async def test_pages_stream_is_public_and_tx_is_null(server: object, world: World) -> None:
    anonymous = Api(world.server.url)
    response = await anonymous.request("GET", "/pages/stream?offset=now")
    assert response.status_code == 200
    assert response.json()["activities"] == []
    async with Stream(anonymous.client, "/pages/stream?offset=now&live=sse", {}) as stream:
        _, offset = await stream.until_offset()
        assert "cursor" in orjson.loads(offset.data)
    await anonymous.aclose()


async def test_cookie_authenticates_event_source(world: World) -> None:
    async with httpx.AsyncClient(base_url=world.server.url) as client:
        signed_in = await client.post(
            "/auth/sign-in", json={"email": world.member.email, "password": "correct-horse"}
        )
        assert signed_in.status_code == 200
        async with Stream(client, world.stream_url("offset=now&live=sse"), {}) as stream:
            assert stream.response is not None
            assert stream.response.status_code == 200
            await stream.until_offset()
