"""Hostile input that is not in the API's description: bodies past the limit, JSON nested
10,000 deep or not UTF-8, query strings past what the HTTP parser takes, header floods.

Each answer must be a clear 4xx, reached without a hang (every socket read is bounded),
never a 500. Where the application answers, it is an RFC 9457 problem; where uvicorn
answers first (a request line it cannot parse), it is uvicorn's own plain-text 400 and the
connection is closed, which is what a client sees and is fine.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
import pytest_asyncio

from api.support import assert_problem, create_org
from harness import Api, ServerProcess, User

from .support import split_head

pytestmark = pytest.mark.asyncio(loop_scope="session")

LIMIT = 1024 * 1024  # the default SYNCSTREAM_MAX_BODY_BYTES


@dataclass
class Target:
    api: Api
    owner: User
    org: dict[str, Any]

    @property
    def attachments(self) -> str:
        return f"/organizations/{self.org['id']}/attachments"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def target(server: ServerProcess) -> AsyncIterator[Target]:
    api = Api(server.url)
    owner = await api.sign_up()
    yield Target(api, owner, await create_org(api, owner.token))
    await api.aclose()


@dataclass
class RawAnswer:
    status: int
    headers: dict[str, str]
    body: bytes


def raw_request(port: int, request: bytes) -> RawAnswer:
    """Send bytes as they are (no client library would send these) and read one answer.
    The read is bounded: a server that hangs fails the test instead of stalling it."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        # The server may answer and close before taking it all: then read what it said.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(request)
        data = b""
        while (head := split_head(data)) is None:
            chunk = sock.recv(65536)
            assert chunk, f"connection closed without an answer: {data[:200]!r}"
            data += chunk
        status, headers, rest = head
        length = int(headers.get("content-length", "0"))
        while len(rest) < length:
            chunk = sock.recv(65536)
            assert chunk, "connection closed mid-answer"
            rest += chunk
        return RawAnswer(status, headers, rest[:length])


def assert_raw_problem(answer: RawAnswer, status: int, type_: str) -> dict[str, Any]:
    assert answer.status == status, (answer.status, answer.body[:300])
    assert answer.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = orjson.loads(answer.body)
    assert (body["type"], body["status"]) == (type_, status)
    assert body["title"]
    assert body["detail"]
    return body


# -- bodies past the limit --------------------------------------------------------------------


async def test_bodies_over_the_limit_are_413_however_they_come(target: Target, server: ServerProcess) -> None:
    api, token = target.api, target.owner.token
    headers = {"Content-Type": "application/json"}
    # Exactly at the limit the body is read (and refused for what it says); one byte more is 413.
    at_limit = b'{"name": "' + b"n" * (LIMIT - 12) + b'"}'
    assert len(at_limit) == LIMIT
    assert_problem(
        await api.request("POST", target.attachments, content=at_limit, headers=headers, token=token),
        422,
        "validation_error",
    )
    over = at_limit[:-2] + b'n"}'
    assert_problem(
        await api.request("POST", target.attachments, content=over, headers=headers, token=token),
        413,
        "payload_too_large",
    )

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: the limit holds on what streams in
        for _ in range(40):
            yield b"x" * 65536

    response = await api.request("POST", target.attachments, content=chunks(), headers=headers, token=token)
    assert "content-length" not in response.request.headers
    assert_problem(response, 413, "payload_too_large")

    # Announced: refused from the head alone, before a byte of the body is sent.
    head = (
        f"POST {target.attachments} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {50 * LIMIT}\r\n\r\n"
    ).encode()
    answer = await asyncio.to_thread(raw_request, server.port, head)
    assert_raw_problem(answer, 413, "payload_too_large")


# -- bodies that are JSON in name only ----------------------------------------------------------

ODD_BODIES = [
    ("10,000 nested arrays", b"[" * 10_000 + b"]" * 10_000),
    ("10,000 nested objects", b'{"a":' * 10_000 + b"1" + b"}" * 10_000),
    ("nested in a field", b'{"name": "x", "size": ' + b"[" * 10_000 + b"]" * 10_000 + b"}"),
    ("not UTF-8", b'{"name": "\xff\xfe\xc3"}'),
    ("UTF-16", '{"name": "x"}'.encode("utf-16")),
    ("lone surrogate", b'{"name": "\\ud800"}'),
    ("NaN", b'{"name": "x", "size": NaN}'),
    ("a number with 100,000 digits", b'{"name": "x", "size": 1' + b"0" * 100_000 + b"}"),
    ("truncated", b'{"name": "x'),
]


@pytest.mark.parametrize("body", [b for _, b in ODD_BODIES], ids=[n for n, _ in ODD_BODIES])
async def test_odd_json_is_a_clear_422(target: Target, body: bytes) -> None:
    response = await target.api.request(
        "POST",
        target.attachments,
        content=body,
        headers={"Content-Type": "application/json"},
        token=target.owner.token,
    )
    if response.status_code == 201:  # UTF-16 is JSON too (RFC 8259 allowed it once); taking it is fine
        assert response.json()["name"] == "x"
        return
    problem = assert_problem(response, 422, "validation_error")
    assert "There was an error" not in problem["detail"]


# -- what the HTTP parser takes, and what it does not -----------------------------------------


async def test_query_strings_past_what_the_parser_takes_are_a_plain_400(server: ServerProcess) -> None:
    for path in ("/pages?x=" + "a" * 100_000, "/pages/stream?live=sse&offset=" + "9" * 2_000_000):
        answer = await asyncio.to_thread(
            raw_request, server.port, f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
        )
        assert answer.status == 400, answer
        assert answer.headers.get("connection") == "close"


async def test_long_query_strings_the_parser_takes_are_answered_by_the_contract(
    target: Target, server: ServerProcess
) -> None:
    api, token = target.api, target.owner.token
    # 50,000 digits: a syntactically valid cursor, beyond any ID: must refetch, not a 500.
    response = await api.request("GET", "/pages/stream", params={"offset": "9" * 50_000})
    assert_problem(response, 409, "must_refetch")
    response = await api.request("GET", "/pages/stream", params={"offset": "9" * 50_000, "live": "sse"})
    assert_problem(response, 409, "must_refetch")
    response = await api.request("GET", "/pages/stream", params={"entityTypes": ",".join(["page"] * 5_000)})
    assert response.status_code == 200
    response = await api.request("GET", "/pages/stream", params={"entityTypes": "x" * 50_000})
    assert "entityTypes" in assert_problem(response, 400, "bad_request")["detail"]
    response = await api.request("GET", target.attachments, params={"projectId": "p" * 50_000}, token=token)
    assert response.status_code in (200, 400), response.text[:200]
    many = "&".join(f"p{n}=1" for n in range(5_000))
    answer = await asyncio.to_thread(
        raw_request, server.port, f"GET /pages?{many} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    )
    assert answer.status == 200


async def test_header_floods_are_431(server: ServerProcess) -> None:
    floods = {
        "one 200 KB header": b"X-Big: " + b"a" * 200_000 + b"\r\n",
        "20,000 headers": b"".join(b"X-H%d: v\r\n" % n for n in range(20_000)),
        "a 100 KB cookie": b"Cookie: syncstream_session=" + b"a" * 100_000 + b"\r\n",
    }
    for name, headers in floods.items():
        for path in (b"/pages", b"/pages/stream?live=sse"):
            request = b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n"
            answer = await asyncio.to_thread(raw_request, server.port, request)
            assert answer.status == 431, (name, path, answer)
            assert_raw_problem(answer, 431, "request_header_fields_too_large")
    # A generous but ordinary head is served.
    ordinary = b"".join(b"X-H%d: %s\r\n" % (n, b"v" * 100) for n in range(50))
    answer = await asyncio.to_thread(
        raw_request, server.port, b"GET /pages HTTP/1.1\r\nHost: x\r\n" + ordinary + b"\r\n"
    )
    assert answer.status == 200


async def test_odd_bytes_in_headers_are_4xx(target: Target, server: ServerProcess) -> None:
    cases = [
        (b"/pages/stream?live=sse", b"Last-Event-ID: \xff\xfe", 400, "bad_request"),
        (b"/pages/stream?live=sse", b"Last-Event-ID: -5", 400, "bad_request"),
        (b"/me", b"Authorization: Bearer \xff\xfe\xfd", 401, "unauthorized"),
        (b"/me", b"Cookie: syncstream_session=\xff\xfe", 401, "unauthorized"),
        (b"/me", b"Authorization: Bearer " + b"t" * 4000, 401, "unauthorized"),
    ]
    for path, header, status, type_ in cases:
        answer = await asyncio.to_thread(
            raw_request, server.port, b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n" + header + b"\r\n\r\n"
        )
        body = assert_raw_problem(answer, status, type_)
        if path.startswith(b"/pages/stream"):
            assert "Last-Event-ID" in body["detail"]
    # A NUL in a header value is refused by the HTTP parser itself.
    answer = await asyncio.to_thread(
        raw_request, server.port, b"GET /pages HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n"
    )
    assert answer.status == 400
