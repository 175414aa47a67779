"""Sessions: the cookie's Max-Age, ``GET /me/sessions``, ending one session, and signing out
everywhere else, each ending that session's open streams."""

from __future__ import annotations

from datetime import datetime, timedelta
from http.cookies import SimpleCookie
from typing import Any

import orjson

from harness import Api, Stream, User

from .support import PASSWORD, TIMESTAMP, anonymous, assert_problem, create_org, sign_in

SESSION_KEYS = {"id", "createdAt", "lastUsedAt", "expiresAt", "current", "userAgent", "address"}
IDLE = timedelta(days=14)  # the defaults the shared server runs with
MAX = timedelta(days=90)


def parse(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


async def sessions(api: Api, token: str) -> list[dict[str, Any]]:
    body = await api.ok("GET", "/me/sessions", token=token)
    assert set(body) == {"items"}
    items: list[dict[str, Any]] = body["items"]
    return items


async def current_id(api: Api, token: str) -> str:
    [mine] = [s["id"] for s in await sessions(api, token) if s["current"]]
    return mine


async def test_the_session_cookie_lives_as_long_as_a_session_may(api: Api) -> None:
    user = await api.sign_up()
    for path, body in (
        ("/auth/sign-in", {"email": user.email, "password": PASSWORD}),
        ("/auth/sign-up", {"email": f"x{user.email}", "password": PASSWORD, "name": "X"}),
    ):
        response = await api.request("POST", path, json=body)
        cookie = SimpleCookie()
        cookie.load(response.headers["set-cookie"])
        assert cookie["syncstream_session"]["max-age"] == str(int(MAX.total_seconds()))


async def test_the_list_shows_each_live_session_with_its_times(api: Api) -> None:
    user = await api.sign_up()
    async with anonymous(api) as laptop:
        response = await laptop.post(
            "/auth/sign-in",
            json={"email": user.email, "password": PASSWORD},
            headers={"User-Agent": "Laptop/1.0"},
        )
        laptop_token = response.json()["token"]
    items = await sessions(api, user.token)
    assert len(items) == 2
    for item in items:
        assert set(item) == SESSION_KEYS
        for key in ("createdAt", "lastUsedAt", "expiresAt"):
            assert TIMESTAMP.match(item[key])
        created, used, expires = (parse(item[k]) for k in ("createdAt", "lastUsedAt", "expiresAt"))
        assert created <= used
        assert expires == min(used + IDLE, created + MAX)
        assert item["address"] == "127.0.0.1"
    assert [s["current"] for s in items].count(True) == 1
    [other] = [s for s in items if not s["current"]]
    assert other["userAgent"] == "Laptop/1.0"
    assert other["id"] == await current_id(api, laptop_token)
    # Another user sees only their own.
    stranger = await api.sign_up()
    assert [s["id"] for s in await sessions(api, stranger.token)] == [await current_id(api, stranger.token)]


async def test_ending_one_session_ends_that_token_and_its_streams_only(api: Api) -> None:
    user = await api.sign_up()
    phone = await sign_in(api, user.email)
    org = await create_org(api, user.token)
    url = f"/organizations/{org['id']}/sync/stream?offset=now&live=sse"
    async with (
        Stream(api.client, url, api.headers(phone.token)) as phone_stream,
        Stream(api.client, url, api.headers(user.token)) as own_stream,
    ):
        await phone_stream.until_offset()
        await own_stream.until_offset()
        phone_id = await current_id(api, phone.token)
        await api.ok("DELETE", f"/me/sessions/{phone_id}", 204, token=user.token)
        error = await phone_stream.next()
        assert error is not None
        assert error.event == "error"
        assert orjson.loads(error.data)["type"] == "forbidden"
        assert await phone_stream.next() is None
        created = await api.ok(
            "POST", f"/organizations/{org['id']}/attachments", 201, json={"name": "a"}, token=user.token
        )
        event = await own_stream.next()
        assert event is not None
        assert orjson.loads(event.data)["entityId"] == created["id"]
    assert_problem(await api.request("GET", "/me", token=phone.token), 401, "unauthorized")
    assert [s["id"] for s in await sessions(api, user.token)] == [await current_id(api, user.token)]


async def test_ending_a_session_of_someone_else_is_404(api: Api) -> None:
    user, stranger = await api.sign_up(), await api.sign_up()
    theirs = await current_id(api, stranger.token)
    for session_id in (theirs, "ses_doesnotexist"):
        response = await api.request("DELETE", f"/me/sessions/{session_id}", token=user.token)
        assert_problem(response, 404, "not_found")
    await api.ok("GET", "/me", token=stranger.token)


async def test_ending_the_current_session_signs_out_and_clears_the_cookie(api: Api) -> None:
    user = await api.sign_up()
    second = await sign_in(api, user.email)
    response = await api.request(
        "DELETE", f"/me/sessions/{await current_id(api, second.token)}", token=second.token
    )
    assert response.status_code == 204
    cleared = SimpleCookie()
    cleared.load(response.headers["set-cookie"])
    assert cleared["syncstream_session"].value in ("", '""')
    assert_problem(await api.request("GET", "/me", token=second.token), 401, "unauthorized")
    await api.ok("GET", "/me", token=user.token)


async def test_signing_out_everywhere_else_keeps_only_the_current_session(api: Api) -> None:
    user = await api.sign_up()
    others: list[User] = [await sign_in(api, user.email) for _ in range(3)]
    org = await create_org(api, user.token)
    url = f"/organizations/{org['id']}/sync/stream?offset=now&live=sse"
    async with Stream(api.client, url, api.headers(others[0].token)) as elsewhere:
        await elsewhere.until_offset()
        await api.ok("DELETE", "/me/sessions", 204, token=user.token)
        error = await elsewhere.next()
        assert error is not None
        assert orjson.loads(error.data)["type"] == "forbidden"
    for other in others:
        assert_problem(await api.request("GET", "/me", token=other.token), 401, "unauthorized")
    assert [s["current"] for s in await sessions(api, user.token)] == [True]
    await api.ok("GET", "/me", token=user.token)


async def test_session_routes_need_credentials(api: Api) -> None:
    async with anonymous(api) as client:
        assert_problem(await client.get("/me/sessions"), 401, "unauthorized")
        assert_problem(await client.delete("/me/sessions"), 401, "unauthorized")
        assert_problem(await client.delete("/me/sessions/ses_x"), 401, "unauthorized")
