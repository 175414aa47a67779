"""Authentication: sign-up, sign-in, the session cookie, sign-out, ``/me`` and rate limiting."""

from __future__ import annotations

from http.cookies import SimpleCookie

import pytest

from harness import Api, unique

from .support import (
    MEMBERSHIP_KEYS,
    PASSWORD,
    TIMESTAMP,
    USER_KEYS,
    anonymous,
    assert_problem,
    create_org,
    sign_in,
)


def new_email() -> str:
    return f"{unique('u')}@example.test"


async def test_sign_up_returns_the_user_and_a_working_token(api: Api) -> None:
    email = new_email()
    response = await api.request(
        "POST", "/auth/sign-up", json={"email": email, "password": PASSWORD, "name": "Ada"}
    )
    assert response.status_code == 201, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"user", "token"}
    user = body["user"]
    assert set(user) == USER_KEYS
    assert user["email"] == email
    assert user["name"] == "Ada"
    assert user["role"] == "user"
    assert isinstance(user["id"], str)
    assert user["id"]
    assert TIMESTAMP.match(user["createdAt"])
    assert isinstance(body["token"], str)
    assert body["token"]
    me = await api.ok("GET", "/me", token=body["token"])
    assert me["user"] == user


async def test_sign_up_never_makes_a_system_admin(api: Api) -> None:
    response = await api.request(
        "POST",
        "/auth/sign-up",
        json={"email": new_email(), "password": PASSWORD, "name": "Eve", "role": "admin"},
    )
    if response.status_code == 201:
        assert response.json()["user"]["role"] == "user"
    else:
        assert_problem(response, 422, "validation_error")


async def test_password_needs_eight_characters(api: Api) -> None:
    short = await api.request(
        "POST", "/auth/sign-up", json={"email": new_email(), "password": "7-chars", "name": "Bo"}
    )
    body = assert_problem(short, 422, "validation_error")
    assert any("password" in error["loc"] for error in body["errors"])
    exactly = await api.request(
        "POST", "/auth/sign-up", json={"email": new_email(), "password": "8-chars!", "name": "Bo"}
    )
    assert exactly.status_code == 201, exactly.text


@pytest.mark.parametrize(
    "body",
    [
        {"password": PASSWORD, "name": "No email"},
        {"email": "x@example.test", "name": "No password"},
        {"email": "not-an-email", "password": PASSWORD, "name": "Bad email"},
        {"email": "y@example.test", "password": PASSWORD, "name": ""},
    ],
)
async def test_sign_up_validates_its_body(api: Api, body: dict[str, str]) -> None:
    assert_problem(await api.request("POST", "/auth/sign-up", json=body), 422, "validation_error")


async def test_duplicate_email_is_a_conflict_in_any_case(api: Api) -> None:
    user = await api.sign_up()
    for email in (user.email, user.email.upper()):
        response = await api.request(
            "POST", "/auth/sign-up", json={"email": email, "password": PASSWORD, "name": "Twin"}
        )
        assert_problem(response, 409, "conflict")


async def test_sign_in_returns_a_new_token_and_sets_the_session_cookie(api: Api) -> None:
    user = await api.sign_up()
    response = await api.request("POST", "/auth/sign-in", json={"email": user.email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"user", "token"}
    assert set(body["user"]) == USER_KEYS
    assert body["user"]["id"] == user.id
    assert body["token"] != user.token

    [header] = response.headers.get_list("set-cookie")
    cookie = SimpleCookie()
    cookie.load(header)
    morsel = cookie["syncstream_session"]
    assert morsel.value == body["token"]
    assert morsel["httponly"]
    assert morsel["path"] == "/"
    assert morsel["samesite"].lower() == "lax"
    assert header.startswith(f"syncstream_session={body['token']};")


async def test_sign_in_ignores_the_case_of_the_email(api: Api) -> None:
    user = await api.sign_up()
    signed_in = await sign_in(api, user.email.upper())
    assert signed_in.id == user.id


async def test_wrong_credentials_are_401_and_do_not_tell_which_part_was_wrong(api: Api) -> None:
    user = await api.sign_up()
    wrong_password = await api.request(
        "POST", "/auth/sign-in", json={"email": user.email, "password": "not-the-password"}
    )
    unknown_email = await api.request(
        "POST", "/auth/sign-in", json={"email": new_email(), "password": PASSWORD}
    )
    first = assert_problem(wrong_password, 401, "unauthorized")
    second = assert_problem(unknown_email, 401, "unauthorized")
    first.pop("instance"), second.pop("instance")  # each request's own ID
    assert first == second
    assert "set-cookie" not in wrong_password.headers


async def test_the_cookie_alone_authenticates(api: Api) -> None:
    user = await api.sign_up()
    async with anonymous(api) as browser:
        assert_problem(await browser.get("/me"), 401, "unauthorized")
        response = await browser.post("/auth/sign-in", json={"email": user.email, "password": PASSWORD})
        assert response.status_code == 200
        # The jar now holds the cookie: no Authorization header is sent.
        me = await browser.get("/me")
        assert me.status_code == 200, me.text
        assert me.json()["user"]["id"] == user.id
    async with anonymous(api) as other:
        explicit = await other.get("/me", headers={"Cookie": f"syncstream_session={user.token}"})
        assert explicit.status_code == 200


@pytest.mark.parametrize(
    "authorization",
    ["Bearer not-a-token", "Bearer", "Basic dXNlcjpwYXNz", "Bearer " + "x" * 5000, "token"],
)
async def test_missing_or_invalid_credentials_are_401(api: Api, authorization: str) -> None:
    async with anonymous(api) as client:
        assert_problem(await client.get("/me"), 401, "unauthorized")
        assert_problem(await client.get("/me", headers={"Authorization": authorization}), 401, "unauthorized")
        assert_problem(await client.get("/organizations"), 401, "unauthorized")


async def test_sign_out_ends_the_token_at_once_and_only_that_one(api: Api) -> None:
    user = await api.sign_up()
    second = await sign_in(api, user.email)
    response = await api.request("POST", "/auth/sign-out", token=second.token)
    assert response.status_code == 204
    assert response.content == b""
    cleared = SimpleCookie()
    cleared.load(response.headers["set-cookie"])
    assert cleared["syncstream_session"].value in ("", '""')
    assert_problem(await api.request("GET", "/me", token=second.token), 401, "unauthorized")
    assert_problem(await api.request("POST", "/auth/sign-out", token=second.token), 401, "unauthorized")
    await api.ok("GET", "/me", token=user.token)  # the sign-up session is untouched


async def test_sign_out_with_the_cookie(api: Api) -> None:
    user = await api.sign_up()
    async with anonymous(api) as browser:
        await browser.post("/auth/sign-in", json={"email": user.email, "password": PASSWORD})
        token = browser.cookies["syncstream_session"]
        assert (await browser.post("/auth/sign-out")).status_code == 204
        assert_problem(await browser.get("/me"), 401, "unauthorized")
    assert_problem(await api.request("GET", "/me", token=token), 401, "unauthorized")


async def test_sign_out_needs_credentials(api: Api) -> None:
    async with anonymous(api) as client:
        assert_problem(await client.post("/auth/sign-out"), 401, "unauthorized")


async def test_me_lists_the_memberships(api: Api) -> None:
    user = await api.sign_up(name="Mia")
    empty = await api.ok("GET", "/me", token=user.token)
    assert empty["memberships"] == []
    assert empty["user"]["name"] == "Mia"
    org = await create_org(api, user.token)
    me = await api.ok("GET", "/me", token=user.token)
    assert set(me) == {"user", "memberships"}
    [membership] = me["memberships"]
    assert set(membership) == MEMBERSHIP_KEYS
    assert membership["userId"] == user.id
    assert membership["organizationId"] == org["id"]
    assert membership["projectId"] is None
    assert membership["role"] == "admin"
    assert TIMESTAMP.match(membership["createdAt"])


async def test_too_many_failed_sign_ins_for_one_account_are_429(api: Api) -> None:
    victim = await api.sign_up()
    bystander = await api.sign_up()
    statuses = []
    limited = None
    for _ in range(100):
        response = await api.request(
            "POST", "/auth/sign-in", json={"email": victim.email, "password": "guess-guess"}
        )
        if response.status_code == 429:
            limited = response
            break
        statuses.append(assert_problem(response, 401, "unauthorized")["status"])
    assert limited is not None, "never rate limited"
    assert statuses, "limited before any failure"
    assert_problem(limited, 429, "too_many_requests")
    assert int(limited.headers["retry-after"]) >= 1
    # The account stays limited, even for the right password...
    right = await api.request("POST", "/auth/sign-in", json={"email": victim.email, "password": PASSWORD})
    assert_problem(right, 429, "too_many_requests")
    # ...but someone else signing in from the same address is not locked out.
    assert (await sign_in(api, bystander.email)).id == bystander.id
