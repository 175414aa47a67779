"""Every error of the contract is an RFC 9457 problem, and no input a client can send is a 500."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pytest
import pytest_asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness import Api, User, unique

from .support import add_member, anonymous, assert_problem, create_org

MIB = 1024 * 1024


@dataclass
class Setting:
    api: Api
    owner: User
    member: User
    org: dict[str, Any]
    attachment: dict[str, Any]

    @property
    def attachments(self) -> str:
        return f"/organizations/{self.org['id']}/attachments"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def setting(client: Api) -> AsyncIterator[Setting]:
    owner, member = await client.sign_up(), await client.sign_up()
    org = await create_org(client, owner.token)
    await add_member(client, owner.token, org["id"], member.email)
    attachment = await client.ok(
        "POST", f"/organizations/{org['id']}/attachments", 201, json={"name": "a"}, token=owner.token
    )
    yield Setting(client, owner, member, org, attachment)


# -- one test per code of the table ------------------------------------------------------------


async def test_400_names_the_malformed_parameter(setting: Setting) -> None:
    response = await setting.api.request(
        "GET", setting.attachments, params={"projectId": "p" * 200}, token=setting.owner.token
    )
    body = assert_problem(response, 400, "bad_request")
    assert "projectId" in body["detail"]


async def test_401_without_credentials(setting: Setting) -> None:
    async with anonymous(setting.api) as client:
        response = await client.get(setting.attachments)
    assert_problem(response, 401, "unauthorized")


async def test_403_when_authenticated_but_not_allowed(setting: Setting) -> None:
    response = await setting.api.request(
        "DELETE", f"/organizations/{setting.org['id']}", token=setting.member.token
    )
    assert_problem(response, 403, "forbidden")


@pytest.mark.parametrize(
    "path", ["/no/such/route", "/organizations/{org}/nothing", "/organizations/{org}/attachments/att_missing"]
)
async def test_404_for_missing_things_and_unknown_routes(setting: Setting, path: str) -> None:
    response = await setting.api.request("GET", path.format(org=setting.org["id"]), token=setting.owner.token)
    assert_problem(response, 404, "not_found")


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", "/pages", {"GET", "POST"}),
        ("POST", "/me", {"GET"}),
        ("PUT", "/organizations/{org}", {"GET", "DELETE"}),
        ("GET", "/auth/sign-in", {"POST"}),
    ],
)
async def test_405_names_every_allowed_method(
    setting: Setting, method: str, path: str, allowed: set[str]
) -> None:
    response = await setting.api.request(
        method, path.format(org=setting.org["id"]), token=setting.owner.token
    )
    assert response.status_code == 405
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert (body["status"], body["type"]) == (405, "method_not_allowed")
    assert {"title", "detail"} <= set(body)
    assert allowed <= {m.strip() for m in response.headers["allow"].split(",")}


async def test_409_for_a_duplicate_slug(setting: Setting) -> None:
    response = await setting.api.request(
        "POST", "/organizations", json={"name": "x", "slug": setting.org["slug"]}, token=setting.owner.token
    )
    assert_problem(response, 409, "conflict")


async def test_413_for_a_body_over_one_mebibyte(setting: Setting) -> None:
    big = {"name": "x" * (MIB + 1), "slug": unique("big-")}
    response = await setting.api.request("POST", "/organizations", json=big, token=setting.owner.token)
    assert_problem(response, 413, "payload_too_large")
    # Also before authentication, and when the body streams in without a Content-Length.
    async with anonymous(setting.api) as client:
        response = await client.post("/auth/sign-up", content=b"x" * (MIB + 10))
        assert_problem(response, 413, "payload_too_large")

    def chunks() -> Iterator[bytes]:
        yield b'{"name": "'
        for _ in range(1100):
            yield b"y" * 1024
        yield b'", "slug": "streamed"}'

    response = await setting.api.client.post(
        "/organizations",
        content=_async(chunks()),
        headers={**setting.api.headers(setting.owner.token), "Content-Type": "application/json"},
    )
    assert "content-length" not in response.request.headers
    assert_problem(response, 413, "payload_too_large")


async def test_a_body_just_under_the_limit_is_read(setting: Setting) -> None:
    """Under the limit the body reaches validation (the name is too long: 422, not 413)."""
    response = await setting.api.request(
        "POST", setting.attachments, json={"name": "z" * (MIB - 100)}, token=setting.owner.token
    )
    assert_problem(response, 422, "validation_error")


async def test_a_streamed_body_under_the_limit_works(setting: Setting) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"name": '
        yield b'"streamed.pdf"}'

    response = await setting.api.client.post(
        setting.attachments,
        content=_async(chunks()),
        headers={**setting.api.headers(setting.owner.token), "Content-Type": "application/json"},
    )
    assert response.status_code == 201, response.text
    assert response.json()["name"] == "streamed.pdf"


async def test_422_lists_the_errors(setting: Setting) -> None:
    response = await setting.api.request(
        "POST", setting.attachments, json={"name": "", "size": -1, "bogus": 1}, token=setting.owner.token
    )
    body = assert_problem(response, 422, "validation_error")
    errors = body["errors"]
    assert isinstance(errors, list)
    locations = {tuple(error["loc"]) for error in errors}
    assert {("body", "name"), ("body", "size"), ("body", "bogus")} <= locations
    for error in errors:
        assert isinstance(error["msg"], str)


# -- bodies a client can send ------------------------------------------------------------------

BAD_BODIES: list[tuple[str, bytes, str | None]] = [
    ("malformed json", b'{"name": ', "application/json"),
    ("trailing garbage", b'{"name": "x"} trailing', "application/json"),
    ("array", b'["name"]', "application/json"),
    ("string", b'"name"', "application/json"),
    ("number", b"42", "application/json"),
    ("null", b"null", "application/json"),
    ("empty", b"", "application/json"),
    ("not utf-8", b'{"name": "\xff\xfe"}', "application/json"),
    ("plain text", b'{"name": "x"}', "text/plain"),
    ("form", b"name=x", "application/x-www-form-urlencoded"),
    (
        "multipart",
        b"--b\r\nContent-Disposition: form-data; name=name\r\n\r\nx\r\n--b--\r\n",
        "multipart/form-data; boundary=b",
    ),
    ("no content type", b'{"name": "x"}', None),
    ("lone surrogate", b'{"name": "\\ud800"}', "application/json"),
    ("deep nesting", b'{"name": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "application/json"),
    ("huge number", b'{"name": "x", "size": 1' + b"0" * 5000 + b"}", "application/json"),
    ("float size", b'{"name": "x", "size": 1.5}', "application/json"),
    ("nan", b'{"name": "x", "size": NaN}', "application/json"),
    ("huge string", json.dumps({"name": "n" * 900_000}).encode(), "application/json"),
    (
        "huge tx",
        json.dumps({"name": "x", "tx": {"transactionId": "t" * 900_000, "sourceId": "s"}}).encode(),
        "application/json",
    ),
    ("nested tx", b'{"name": "x", "tx": "t-1"}', "application/json"),
    ("duplicate keys", b'{"name": "x", "name": ""}', "application/json"),
]


@pytest.mark.parametrize(
    ("content", "content_type"), [b[1:] for b in BAD_BODIES], ids=[b[0] for b in BAD_BODIES]
)
async def test_bad_bodies_are_4xx_problems(
    setting: Setting, content: bytes, content_type: str | None
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = await setting.api.request(
        "POST", setting.attachments, content=content, headers=headers, token=setting.owner.token
    )
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])
    assert_problem(response, response.status_code, response.json()["type"])


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
async def test_a_body_that_is_not_typed_as_json_says_so(setting: Setting, content_type: str | None) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = await setting.api.request(
        "POST", setting.attachments, content=b'{"name": "x"}', headers=headers, token=setting.owner.token
    )
    body = assert_problem(response, 415, "unsupported_media_type")
    assert "Content-Type: application/json" in body["detail"]


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "application/merge-patch+json"])
async def test_json_content_types_with_parameters_or_suffixes_are_read(
    setting: Setting, content_type: str
) -> None:
    response = await setting.api.request(
        "POST",
        setting.attachments,
        content=b'{"name": "typed"}',
        headers={"Content-Type": content_type},
        token=setting.owner.token,
    )
    assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/auth/sign-up"),
        ("POST", "/auth/sign-in"),
        ("POST", "/organizations"),
        ("POST", "/organizations/{org}/projects"),
        ("POST", "/organizations/{org}/memberships"),
        ("PATCH", "/organizations/{org}/attachments/{attachment}"),
        ("POST", "/pages"),
    ],
)
@pytest.mark.parametrize(
    "content", [b"[]", b"{", b'{"unexpected": true}', b"\x00\x01"], ids=["array", "broken", "extra", "binary"]
)
async def test_every_write_route_rejects_bad_bodies(
    setting: Setting, method: str, path: str, content: bytes
) -> None:
    url = path.format(org=setting.org["id"], attachment=setting.attachment["id"])
    response = await setting.api.request(
        method, url, content=content, headers={"Content-Type": "application/json"}, token=setting.owner.token
    )
    assert response.status_code in (400, 403, 422), (response.status_code, response.text[:300])
    assert_problem(response, response.status_code, response.json()["type"])


@pytest.mark.parametrize(
    "text",
    ["nul\x00char", "\u202eright-to-left", "emoji 🎉", "x" * 300, "", " ", "🎉" * 200, "ä\u0301", "\ufeff"],
)
async def test_odd_strings_are_stored_or_refused_never_a_500(setting: Setting, text: str) -> None:
    api, token = setting.api, setting.owner.token
    bodies: list[tuple[str, str, dict[str, Any]]] = [
        ("POST", setting.attachments, {"name": text}),
        ("POST", "/organizations", {"name": text, "slug": unique("s-")}),
        ("POST", "/organizations", {"name": "n", "slug": text}),
        ("POST", "/auth/sign-in", {"email": text, "password": text}),
        ("POST", f"/organizations/{setting.org['id']}/memberships", {"email": text, "role": "member"}),
        ("POST", setting.attachments, {"name": "x", "tx": {"transactionId": text or "t", "sourceId": "s"}}),
        ("GET", f"/organizations/{quote(text, safe='')}", {}),
        ("GET", f"{setting.attachments}/{quote(text, safe='')}", {}),
        ("GET", f"/pages/{quote(text, safe='')}", {}),
    ]
    for method, path, body in bodies:
        response = await api.request(method, path, json=body or None, token=token)
        assert response.status_code < 500, (method, path, response.status_code, response.text[:300])
        if response.status_code >= 400:
            assert_problem(response, response.status_code, response.json()["type"])
        elif path == setting.attachments and "tx" not in body:
            assert response.json()["name"] == text  # stored as sent


async def test_odd_query_parameters_are_never_a_500(setting: Setting) -> None:
    for value in ("\x00", "%", "a" * 64, "a" * 10_000, "🎉", ""):
        response = await setting.api.request(
            "GET", setting.attachments, params={"projectId": value}, token=setting.owner.token
        )
        assert response.status_code in (200, 400), (value[:20], response.status_code, response.text[:300])


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    st.dictionaries(
        st.sampled_from(["name", "url", "contentType", "size", "projectId", "tx", "extra"]),
        st.recursive(
            st.none()
            | st.booleans()
            | st.integers()
            | st.floats(allow_nan=False, allow_infinity=False)
            | st.text(max_size=20),
            lambda inner: (
                st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
            ),
            max_leaves=5,
        ),
    )
)
def test_arbitrary_attachment_bodies_are_never_a_500(setting: Setting, body: dict[str, Any]) -> None:
    """Hypothesis drives a synchronous client here: its examples run outside the event loop."""
    import httpx

    response = httpx.post(
        setting.api.base_url + setting.attachments,
        json=body,
        headers=setting.api.headers(setting.owner.token),
        timeout=30,
    )
    assert response.status_code < 500, (body, response.text[:300])
    if response.status_code >= 400:
        assert response.headers["content-type"] == "application/problem+json"


async def _async(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk
