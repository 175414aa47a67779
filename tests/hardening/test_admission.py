"""Admission: what one hostile client can make the server hold, attacked through real sockets.

- Sockets that announce a body on a stream request and never send it once took every
  stream-opening slot and stopped every stream; such a request is now a ``400`` at once.
- A connection that sends nothing, or its head or body a few bytes at a time, is closed
  after the head or body deadline (both of uvicorn's parsers), while an open stream, whose
  request arrived long ago, is not.
- Open streams are counted per user, per client address (an IPv6 /64) and per process;
  past each bound the answer is a problem with ``Retry-After`` (429, or 503 for the
  process), and the process cap stays below the open-file limit, which the server raises
  to its hard value at start: ``/health`` and REST answer while every stream is taken.

Admission happens before any database work, so these run on SQLite only.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from harness import Api, ServerProcess, User, unique

from .support import RawStream, open_stream, split_head, until_subscribers

pytestmark = pytest.mark.asyncio(loop_scope="session")

#: Far beyond every deadline configured here: reached only if the server never acts.
OUTER_SECONDS = 20.0


def start(tmp: Path, env: dict[str, str] | None = None, **kwargs: Any) -> ServerProcess:
    return ServerProcess(database_url=f"sqlite:///{tmp / 'admission.db'}", env=env or {}, **kwargs).start()


# -- raw HTTP ----------------------------------------------------------------------------------


async def read_until_closed(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sends until it closes the connection."""
    async with asyncio.timeout(OUTER_SECONDS):
        return await reader.read()


@contextlib.asynccontextmanager
async def connection(port: int) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        yield reader, writer
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


def problem_of(raw: bytes) -> tuple[int, dict[str, str], dict[str, Any]]:
    head = split_head(raw)
    assert head is not None, raw
    status, headers, body = head
    assert headers["content-type"] == "application/problem+json", headers
    return status, headers, orjson.loads(body)


PER_USER = 3
PER_ADDRESS = 3


@pytest.fixture(scope="module")
def quota_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {"SYNCSTREAM_STREAMS_PER_USER": str(PER_USER), "SYNCSTREAM_STREAMS_PER_ADDRESS": str(PER_ADDRESS)}
    server = start(tmp_path_factory.mktemp("quota"), env)
    yield server
    server.stop()


# -- 1. sockets that announce a body take no slot ------------------------------------------------


async def test_stream_requests_that_announce_a_body_stop_no_stream(quota_server: ServerProcess) -> None:
    """The attack as it was seen: 100 sockets (more than the 64 opening slots) send a stream
    ``GET`` with ``Content-Length: 5`` or ``Transfer-Encoding: chunked`` and then nothing."""
    api = Api(quota_server.url)
    owner = await api.sign_up()
    org = await owner.api().ok("POST", "/organizations", 201, json={"name": "A", "slug": unique("adm")})
    paths = ["/pages/stream?live=sse", "/pages/stream", f"/organizations/{org['id']}/sync/stream?live=sse"]
    bodies = ["Content-Length: 5", "Transfer-Encoding: chunked"]
    sockets = []
    for n in range(100):
        reader, writer = await asyncio.open_connection("127.0.0.1", quota_server.port)
        head = f"GET {paths[n % 3]} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {owner.token}\r\n"
        writer.write(f"{head}{bodies[n % 2]}\r\n\r\n".encode())
        sockets.append((reader, writer))
    try:
        for reader, _ in sockets:  # each refused at once, and its connection closed
            status, headers, problem = problem_of(await read_until_closed(reader))
            assert (status, problem["type"]) == (400, "bad_request"), problem
            assert headers["connection"] == "close"
        # Streams of both kinds, SSE and JSON, open as usual.
        pages = await open_stream(quota_server.port, "/pages/stream?live=sse", within=OUTER_SECONDS)
        org_stream = await open_stream(quota_server.port, paths[2], token=owner.token, within=OUTER_SECONDS)
        assert pages.status == org_stream.status == 200
        page = await api.ok("GET", "/pages/stream?offset=-1")
        assert page["hasMore"] is False
        pages.abort()
        org_stream.abort()
        await until_subscribers(quota_server.url, 0)
    finally:
        for _, writer in sockets:
            writer.close()
        await api.aclose()


# -- 2. head and body deadlines ------------------------------------------------------------------


@pytest.fixture(scope="module", params=["httptools", "h11"])
def deadline_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    env = {"SYNCSTREAM_HEAD_TIMEOUT_SECONDS": "1", "SYNCSTREAM_BODY_TIMEOUT_SECONDS": "1"}
    server = start(tmp_path_factory.mktemp("deadline"), env, args=("--http", request.param))
    yield server
    server.stop()


async def test_a_connection_that_sends_nothing_is_closed_silently(deadline_server: ServerProcess) -> None:
    async with connection(deadline_server.port) as (reader, _):
        assert await read_until_closed(reader) == b""  # no 408 for a pre-connection


async def test_a_head_sent_a_few_bytes_at_a_time_is_closed_with_408(deadline_server: ServerProcess) -> None:
    async with connection(deadline_server.port) as (reader, writer):

        async def trickle() -> None:
            writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\n")
            with contextlib.suppress(ConnectionError):
                for _ in range(int(OUTER_SECONDS / 0.2)):
                    writer.write(b"X")  # a header name that never ends, a byte every 0.2 s
                    await writer.drain()
                    await asyncio.sleep(0.2)  # the attacker's pace, not a wait for the server

        trickling = asyncio.create_task(trickle())
        try:
            status, headers, problem = problem_of(await read_until_closed(reader))
        finally:
            trickling.cancel()
        assert (status, problem["type"]) == (408, "request_timeout")
        assert headers["connection"] == "close"


async def test_a_body_withheld_is_closed_with_408(deadline_server: ServerProcess) -> None:
    async with connection(deadline_server.port) as (reader, writer):
        writer.write(
            b"POST /auth/sign-in HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100\r\n\r\n{"
        )
        status, _, problem = problem_of(await read_until_closed(reader))
        assert (status, problem["type"]) == (408, "request_timeout")


async def test_requests_that_arrive_whole_are_served_and_kept_alive(deadline_server: ServerProcess) -> None:
    async with httpx.AsyncClient(base_url=deadline_server.url) as client:
        for _ in range(3):  # one connection, kept alive between them
            assert (await client.get("/health")).status_code == 200
        body = {"email": f"{unique('u')}@example.test", "password": "correct-horse", "name": "K"}
        assert (await client.post("/auth/sign-up", json=body)).status_code == 201


async def test_an_open_stream_outlives_the_head_deadline(deadline_server: ServerProcess) -> None:
    stream = await open_stream(deadline_server.port, "/pages/stream?live=sse", within=OUTER_SECONDS)
    await stream.until(lambda s: s.pings >= 3, within=OUTER_SECONDS)  # a ping a second: 3 deadlines
    assert not stream.closed.done()
    stream.abort()


async def test_an_endless_head_is_refused_by_its_size_not_only_its_deadline(
    quota_server: ServerProcess,
) -> None:
    """httptools buffers an incomplete head without a bound: one header value streamed at
    link speed once took tens of MiB within the deadline. (h11 bounds it itself.)"""
    async with connection(quota_server.port) as (reader, writer):

        async def flood() -> None:
            writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ")
            with contextlib.suppress(ConnectionError):
                for _ in range(1000):  # 64 MiB at most
                    writer.write(b"a" * 65536)
                    await writer.drain()

        flooding = asyncio.create_task(flood())
        try:
            async with asyncio.timeout(OUTER_SECONDS):
                head = await reader.readuntil(b"\r\n\r\n")
                parsed = split_head(head)
                assert parsed is not None
                body = await reader.readexactly(int(parsed[1]["content-length"]))
        finally:
            flooding.cancel()
        status, headers, problem = problem_of(head + body)
        assert (status, problem["type"]) == (431, "request_header_fields_too_large")
        assert headers["connection"] == "close"


# -- 3. quotas -----------------------------------------------------------------------------------


def from_address(address: str) -> dict[str, str]:
    """As forwarded by a proxy at 127.0.0.1, which uvicorn trusts (``forwarded_allow_ips``)."""
    return {"X-Forwarded-For": address}


async def refused(port: int, path: str, *, token: str | None = None, address: str) -> RawStream:
    stream = await open_stream(port, path, token=token, headers=from_address(address), ready=False)
    # The whole problem document (its connection is kept alive, as after any answer).
    await stream.until(lambda s: s.status != 0 and s.body.endswith(b"}"), within=OUTER_SECONDS)
    stream.abort()
    return stream


def assert_quota_refusal(stream: RawStream, status: int, type_: str) -> None:
    assert stream.status == status, (stream.status, stream.body)
    assert int(stream.headers["retry-after"]) > 0
    assert stream.headers["content-type"] == "application/problem+json"
    problem = orjson.loads(stream.body)
    assert (problem["status"], problem["type"]) == (status, type_)


async def test_streams_per_user_are_bounded(quota_server: ServerProcess) -> None:
    api = Api(quota_server.url)
    owner, other = await api.sign_up(), await api.sign_up()
    org = await owner.api().ok("POST", "/organizations", 201, json={"name": "Q", "slug": unique("q")})
    await owner.api().ok(
        "POST",
        f"/organizations/{org['id']}/memberships",
        201,
        json={"email": other.email, "role": "member", "projectId": None},
    )
    path = f"/organizations/{org['id']}/sync/stream?live=sse&offset=now"
    port = quota_server.port
    # Each from an address of its own: only the user's quota is in play.
    held = [
        await open_stream(port, path, token=owner.token, headers=from_address(f"198.51.100.{n}"))
        for n in range(PER_USER)
    ]
    assert_quota_refusal(
        await refused(port, path, token=owner.token, address="198.51.100.99"), 429, "too_many_requests"
    )
    # JSON pages are not streams, and another user has a quota of its own.
    await owner.api().ok("GET", path.replace("live=sse&", ""))
    theirs = await open_stream(port, path, token=other.token, headers=from_address("198.51.100.98"))
    # A stream that ends gives its place back.
    held.pop().abort()
    await until_subscribers(quota_server.url, PER_USER)
    held.append(await open_stream(port, path, token=owner.token, headers=from_address("198.51.100.97")))
    for stream in [*held, theirs]:
        stream.abort()
    await until_subscribers(quota_server.url, 0)
    await api.aclose()


async def test_streams_per_address_are_bounded_an_ipv6_64_as_one(quota_server: ServerProcess) -> None:
    port = quota_server.port
    path = "/pages/stream?live=sse&offset=now"
    for first, rest, other in (
        ("203.0.113.7", "203.0.113.7", "203.0.113.8"),
        ("2001:db8:5::1", "2001:db8:5::ffff", "2001:db8:5:1::1"),  # the same /64, then the next one
    ):
        held = [await open_stream(port, path, headers=from_address(first)) for _ in range(PER_ADDRESS - 1)]
        held.append(await open_stream(port, path, headers=from_address(rest)))
        assert_quota_refusal(await refused(port, path, address=rest), 429, "too_many_requests")
        assert_quota_refusal(await refused(port, path, address=first), 429, "too_many_requests")
        held.append(await open_stream(port, path, headers=from_address(other)))
        for stream in held:
            stream.abort()
        await until_subscribers(quota_server.url, 0)


async def test_the_process_cap_stays_under_the_open_file_limit_and_health_answers(
    tmp_path: Path,
) -> None:
    """A soft limit of 400 and a hard one of 600: the server raises the soft limit to 600 and
    keeps 256 descriptors in reserve, so it holds at most 344 streams; then a flood of more
    (from many addresses, each within its own quota) is refused with 503, while ``/health``
    and REST answer."""
    server = start(tmp_path, nofile=(400, 600), log_level="info")
    streams: list[RawStream] = []
    try:
        assert "soft limit 600 (was 400), hard limit 600; at most 344 streams" in server.log()
        path = "/pages/stream?live=sse&offset=now"
        for n in range(344):
            streams.append(await open_stream(server.port, path, headers=from_address(f"10.0.{n // 50}.{n}")))
        for n in range(20):
            assert_quota_refusal(await refused(server.port, path, address=f"10.9.0.{n}"), 503, "unavailable")
        status, body = 0, {}
        async with httpx.AsyncClient(base_url=server.url, timeout=OUTER_SECONDS) as client:
            response = await client.get("/health")
            status, body = response.status_code, response.json()
            assert (await client.get("/pages")).status_code == 200
        assert (status, body["subscribers"]) == (200, 344)
    finally:
        for stream in streams:
            stream.abort()
        server.stop()


async def test_user_quota_holder_is_the_user_not_the_token(quota_server: ServerProcess) -> None:
    """Signing in again (a new token, as a new device does) does not buy more streams."""
    api = Api(quota_server.url)
    user: User = await api.sign_up()
    org = await user.api().ok("POST", "/organizations", 201, json={"name": "T", "slug": unique("t")})
    again = await api.ok("POST", "/auth/sign-in", json={"email": user.email, "password": "correct-horse"})
    path = f"/organizations/{org['id']}/sync/stream?live=sse&offset=now"
    tokens = [user.token, again["token"], user.token]
    held = [
        await open_stream(quota_server.port, path, token=t, headers=from_address(f"192.0.2.{n}"))
        for n, t in enumerate(tokens)
    ]
    refusal = await refused(quota_server.port, path, token=again["token"], address="192.0.2.50")
    assert_quota_refusal(refusal, 429, "too_many_requests")
    for stream in held:
        stream.abort()
    await until_subscribers(quota_server.url, 0)
    await api.aclose()
