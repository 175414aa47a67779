"""Hot routes (``modules/hot.py``): a create served on the hot path answers exactly as the
framework's path does, and whatever the hot path does not serve reaches the framework intact.

``application/json`` takes the hot path; ``application/x-same+json`` is JSON to FastAPI but not
served hot, so the same request with that type is the framework's answer to compare with.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from harness import Api, User, unique
from syncstream.modules import hot

from .support import ATTACHMENT_KEYS, PAGE_KEYS, assert_problem, create_org

HOT = "application/json"
FRAMEWORK = "application/x-same+json"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def owner(client: Api) -> AsyncIterator[tuple[User, str]]:
    user = await client.sign_up()
    org = await create_org(client, user.token)
    yield user, org["id"]


async def _post(
    client: Api, token: str | None, org: str, content: bytes, content_type: str, **headers: str
) -> Any:
    sent = {"Content-Type": content_type, **headers}
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    # Straight on the HTTP client, without the session cookie a sign-up left in it.
    client.client.cookies.clear()
    return await client.client.post(f"/organizations/{org}/attachments", content=content, headers=sent)


def _problem(response: Any) -> tuple[int, dict[str, Any], str | None]:
    body = dict(response.json())
    assert body.pop("instance", "").startswith("urn:request:")
    return response.status_code, body, response.headers.get("www-authenticate")


async def test_a_create_answers_alike_on_both_paths(client: Api, owner: tuple[User, str]) -> None:
    user, org = owner
    body = b'{"name":"a.pdf","url":"https://x.test/a","contentType":"application/pdf","size":12}'
    answers = [await _post(client, user.token, org, body, kind) for kind in (HOT, FRAMEWORK)]
    for response in answers:
        assert response.status_code == 201
        assert response.headers["content-type"] == "application/json"
        assert set(response.headers) >= {"content-length", "x-request-id"}
        assert set(response.json()) == ATTACHMENT_KEYS
    hot, framework = (r.json() for r in answers)
    for key in ("id", "createdAt", "updatedAt"):
        del hot[key], framework[key]
    assert (
        hot
        == framework
        == {
            "organizationId": org,
            "projectId": None,
            "name": "a.pdf",
            "url": "https://x.test/a",
            "contentType": "application/pdf",
            "size": 12,
            "createdBy": user.id,
        }
    )


async def test_a_replayed_create_answers_alike_on_both_paths(client: Api, owner: tuple[User, str]) -> None:
    user, org = owner
    tx = unique("tx")
    body = b'{"name":"r","tx":{"transactionId":"%s","sourceId":"s"}}' % tx.encode()
    first = await _post(client, user.token, org, body, HOT)
    assert first.status_code == 201
    for kind in (HOT, FRAMEWORK):
        again = await _post(client, user.token, org, body, kind)
        assert again.status_code == 200
        assert again.json() == first.json()


BODIES = [
    b"",
    b"{",
    b'{"name": 5}',
    b'{"name": "x", "size": "12"}',
    b'{"name": "x", "size": 1.0}',
    b'{"name": "x", "size": NaN}',
    b'{"name": "x", "size": 99999999999999999999999}',
    b'{"name": "x", "typo": 1}',
    b'{"name": ""}',
    b'{"name": "\\ud800"}',
    b"\xef\xbb\xbf" + b'{"name": "x"}',
    b'[{"name": "x"}]',
    b'{"name": "x", "tx": {"transactionId": ""}}',
    b'{"name": "x", "projectId": "' + b"p" * 65 + b'"}',
]


@pytest.mark.parametrize("body", BODIES, ids=range(len(BODIES)))
async def test_a_body_refused_hot_gets_the_frameworks_answer(
    client: Api, owner: tuple[User, str], body: bytes
) -> None:
    user, org = owner
    hot = await _post(client, user.token, org, body, HOT)
    framework = await _post(client, user.token, org, body, "application/json; charset=latin-1")
    assert hot.status_code == framework.status_code
    if hot.status_code == 201:  # json.loads takes a UTF-8 byte-order mark: so must this path
        assert hot.json()["name"] == framework.json()["name"]
        return
    assert_problem(hot, hot.status_code, hot.json()["type"])
    assert _problem(hot) == _problem(framework)


async def test_the_operations_own_errors_are_the_apps_problems(client: Api, owner: tuple[User, str]) -> None:
    user, org = owner
    outsider = await client.sign_up()
    cases = [
        (None, org, 401, "unauthorized"),
        ("not-a-token", org, 401, "unauthorized"),
        (outsider.token, org, 404, "not_found"),
        (user.token, unique("no-org"), 404, "not_found"),
    ]
    for token, where, status, type_ in cases:
        answers = [await _post(client, token, where, b'{"name":"x"}', kind) for kind in (HOT, FRAMEWORK)]
        assert_problem(answers[0], status, type_)
        assert _problem(answers[0]) == _problem(answers[1])
    missing = b'{"name":"x","projectId":"%s"}' % unique("p").encode()
    answers = [await _post(client, user.token, org, missing, kind) for kind in (HOT, FRAMEWORK)]
    assert_problem(answers[0], 404, "not_found")
    assert _problem(answers[0]) == _problem(answers[1])


async def test_a_chunked_or_oversized_body_takes_the_frameworks_path(
    client: Api, owner: tuple[User, str]
) -> None:
    user, org = owner

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"name":'
        yield b'"chunked"}'

    response = await client.request(
        "POST",
        f"/organizations/{org}/attachments",
        content=chunks(),
        headers={"Content-Type": HOT},
        token=user.token,
    )
    assert response.status_code == 201, response.text
    assert response.json()["name"] == "chunked"
    big = b'{"name":"' + b"x" * (1024 * 1024) + b'"}'
    assert_problem(await _post(client, user.token, org, big, HOT), 413, "payload_too_large")


async def test_a_request_id_given_is_echoed_on_the_hot_path(client: Api, owner: tuple[User, str]) -> None:
    user, org = owner
    response = await _post(client, user.token, org, b'{"name":"x"}', HOT, **{"X-Request-ID": "hot-123"})
    assert response.status_code == 201
    assert response.headers["x-request-id"] == "hot-123"


async def test_a_page_create_answers_alike_on_both_paths(client: Api, system_admin: User) -> None:
    other = await client.sign_up()
    answers = []
    for kind in (HOT, FRAMEWORK):
        sent = {"Content-Type": kind, "Authorization": f"Bearer {system_admin.token}"}
        client.client.cookies.clear()
        answers.append(
            await client.client.post("/pages", content=b'{"title":"t","content":"c"}', headers=sent)
        )
    for response in answers:
        assert response.status_code == 201, response.text
        assert set(response.json()) == PAGE_KEYS
    assert [(r.json()["title"], r.json()["content"]) for r in answers] == [("t", "c")] * 2
    for token, body, status in (
        (other.token, b'{"title":"t","content":"c"}', 403),
        (system_admin.token, b'{"title":""}', 422),
    ):
        refused = []
        for kind in (HOT, FRAMEWORK):
            client.client.cookies.clear()
            sent = {"Content-Type": kind, "Authorization": f"Bearer {token}"}
            refused.append(await client.client.post("/pages", content=body, headers=sent))
        assert refused[0].status_code == status
        assert _problem(refused[0]) == _problem(refused[1])


async def test_reading_stops_past_the_limit_whatever_the_head_said() -> None:
    """A body longer than its ``Content-Length`` promised is not buffered past the limit here:
    the framework's body limit answers it, from the messages read so far onwards."""
    chunks = [{"type": "http.request", "body": b"x" * 600, "more_body": True} for _ in range(10)]

    async def receive() -> dict[str, Any]:
        return chunks.pop(0)

    messages, body = await hot._read(receive, 1000)
    assert body is None
    assert len(messages) == 2
    assert len(chunks) == 8
