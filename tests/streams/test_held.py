"""A live stream's connection, held by its own protocol, goes back to HTTP when the stream
ends: the next request on the same connection (keep-alive, or pipelined behind the stream)
is answered. Real server, raw sockets."""

from __future__ import annotations

import asyncio
import socket

import httpx
import pytest

from harness import ServerProcess

from .conftest import World

pytestmark = pytest.mark.asyncio(loop_scope="session")

LAST_CHUNK = b"\r\n0\r\n\r\n"


def open_stream(port: int, path: str, token: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.settimeout(30)
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\r\n".encode())
    return sock


def read_until(sock: socket.socket, marker: bytes, data: bytes = b"") -> bytes:
    """Read until ``marker`` arrived (the socket's timeout bounds every read)."""
    while marker not in data:
        chunk = sock.recv(1 << 16)
        if not chunk:
            raise ConnectionError(f"closed before {marker!r}: {data[-300:]!r}")
        data += chunk
    return data


async def sign_out(server: ServerProcess, token: str) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        response = await client.post("/auth/sign-out", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 204


async def test_an_ended_stream_leaves_its_connection_open_for_the_next_request(world: World) -> None:
    server, member = world.server, world.member
    sock = await asyncio.to_thread(
        open_stream, server.port, world.stream_url("offset=now&live=sse"), member.token
    )
    try:
        await asyncio.to_thread(read_until, sock, b"event: offset")
        await sign_out(server, member.token)  # the session's streams end (403 frame, then the response)
        ended = await asyncio.to_thread(read_until, sock, LAST_CHUNK)
        assert b"event: error" in ended
        await asyncio.to_thread(sock.sendall, b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        answer = await asyncio.to_thread(read_until, sock, b"\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 200")
    finally:
        sock.close()


async def test_a_request_pipelined_behind_a_live_stream_is_answered_when_it_ends(world: World) -> None:
    server, member = world.server, world.member
    sock = await asyncio.to_thread(
        open_stream, server.port, world.stream_url("offset=now&live=sse"), member.token
    )
    try:
        await asyncio.to_thread(read_until, sock, b"event: offset")
        await asyncio.to_thread(sock.sendall, b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        await sign_out(server, member.token)
        data = await asyncio.to_thread(read_until, sock, LAST_CHUNK)
        data = await asyncio.to_thread(read_until, sock, b"HTTP/1.1 200", data.split(LAST_CHUNK, 1)[1])
        assert data.startswith(b"HTTP/1.1 200")
    finally:
        sock.close()
