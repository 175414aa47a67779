"""The details of errors a client acts on: 415 for a body that is not typed as JSON, RFC 6750's
``WWW-Authenticate`` challenges, invalid JSON located in words, and the request ID as ``instance``."""

from __future__ import annotations

from typing import Any

import pytest

from harness import Api, unique

from .support import anonymous, assert_problem, create_org, sign_in


@pytest.fixture
async def owner_org(api: Api) -> tuple[str, str]:
    owner = await api.sign_up()
    org = await create_org(api, owner.token)
    return owner.token, f"/organizations/{org['id']}/attachments"


@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=b"],
)
async def test_a_body_not_typed_as_json_is_415(
    api: Api, owner_org: tuple[str, str], content_type: str | None
) -> None:
    token, attachments = owner_org
    headers = {"Content-Type": content_type} if content_type else {}
    response = await api.request("POST", attachments, content=b'{"name": "x"}', headers=headers, token=token)
    body = assert_problem(response, 415, "unsupported_media_type")
    assert "Content-Type: application/json" in body["detail"]
    assert (content_type or "none").split(";")[0] in body["detail"]


async def test_no_body_and_no_content_type_is_a_missing_body_not_415(
    api: Api, owner_org: tuple[str, str]
) -> None:
    token, attachments = owner_org
    response = await api.request("POST", attachments, token=token)
    assert_problem(response, 422, "validation_error")


async def test_415_on_every_kind_of_json_route(api: Api) -> None:
    # A route whose body is all optional fields (PATCH) and a public one (sign-up).
    owner = await api.sign_up()
    org = await create_org(api, owner.token)
    made = await api.ok(
        "POST", f"/organizations/{org['id']}/attachments", 201, json={"name": "a"}, token=owner.token
    )
    text = {"Content-Type": "text/plain"}
    patched = await api.request(
        "PATCH",
        f"/organizations/{org['id']}/attachments/{made['id']}",
        content=b'{"name": "b"}',
        headers=text,
        token=owner.token,
    )
    assert_problem(patched, 415, "unsupported_media_type")
    signed_up = await api.request("POST", "/auth/sign-up", content=b"{}", headers=text)
    assert_problem(signed_up, 415, "unsupported_media_type")


@pytest.mark.parametrize(
    ("content", "where"),
    [
        (b'{"name": }', "Invalid JSON at line 1, column 10: expecting value"),
        (b'{"name": "x"} trailing', "Invalid JSON at line 1, column 15: extra data"),
        (b'{\n  "name": "x",\n  "size": 1,,\n}', "Invalid JSON at line 3, column 13: expecting"),
        (b'{"name": "x"', "Invalid JSON at line 1, column 13: expecting ',' delimiter"),
    ],
)
async def test_invalid_json_says_where_in_words(
    api: Api, owner_org: tuple[str, str], content: bytes, where: str
) -> None:
    token, attachments = owner_org
    response = await api.request(
        "POST", attachments, content=content, headers={"Content-Type": "application/json"}, token=token
    )
    body = assert_problem(response, 422, "validation_error")
    assert body["detail"].startswith(where), body["detail"]
    assert "body." not in body["detail"]
    assert [error["loc"] for error in body["errors"]] == [["body"]]


async def test_no_credentials_get_a_plain_bearer_challenge(api: Api, owner_org: tuple[str, str]) -> None:
    _, attachments = owner_org
    async with anonymous(api) as client:
        response = await client.get(attachments)
    assert_problem(response, 401, "unauthorized")
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("token", ["not-a-token", "x" * 600])
async def test_a_bad_token_gets_invalid_token(api: Api, owner_org: tuple[str, str], token: str) -> None:
    _, attachments = owner_org
    async with anonymous(api) as client:
        response = await client.get(attachments, headers={"Authorization": f"Bearer {token}"})
    assert_problem(response, 401, "unauthorized")
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('Bearer error="invalid_token"'), challenge
    assert "error_description=" in challenge


async def test_a_signed_out_token_gets_invalid_token_on_streams_too(api: Api) -> None:
    user = await api.sign_up()
    again = await sign_in(api, user.email)
    await api.ok("POST", "/auth/sign-out", 204, token=again.token)
    async with anonymous(api) as client:
        response = await client.get("/me", headers={"Authorization": f"Bearer {again.token}"})
        streamed = await client.get(
            "/organizations/any/sync/stream", headers={"Authorization": f"Bearer {again.token}"}
        )
    for answer in (response, streamed):
        assert_problem(answer, 401, "unauthorized")
        assert answer.headers["www-authenticate"].startswith('Bearer error="invalid_token"')


async def problem_of(api: Api, **kwargs: Any) -> tuple[dict[str, Any], str]:
    response = await api.request("GET", f"/organizations/{unique('missing')}", **kwargs)
    return assert_problem(response, response.status_code, response.json()["type"]), response.headers[
        "x-request-id"
    ]


async def test_problems_carry_the_request_id_as_instance(api: Api) -> None:
    user = await api.sign_up()
    body, echoed = await problem_of(api, token=user.token)
    assert body["status"] == 404
    assert body["instance"] == f"urn:request:{echoed}"
    given = unique("req-")
    body, echoed = await problem_of(api, token=user.token, headers={"X-Request-ID": given})
    assert echoed == given
    assert body["instance"] == f"urn:request:{given}"
    # Errors made outside the routes (the body limit, the validation handler) carry it too.
    sent = await api.request(
        "POST",
        "/auth/sign-up",
        content=b"{",
        headers={"Content-Type": "application/json", "X-Request-ID": given},
    )
    assert assert_problem(sent, 422, "validation_error")["instance"] == f"urn:request:{given}"
    too_large = await api.request(
        "POST",
        "/auth/sign-up",
        content=b"x" * (2 * 1024 * 1024),
        headers={"Content-Type": "application/json", "X-Request-ID": given},
    )
    assert assert_problem(too_large, 413, "payload_too_large")["instance"] == f"urn:request:{given}"
