"""Ending a session takes effect in every process before the request that ended it answers,
even while the bus is down and the other processes' slow poll has not come round: each
process re-reads a cached caller's session row on every request when it is one of several
(its doorbell crosses processes). One primary-key read per authenticated request.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from api.support import assert_problem
from harness import Api, ServerProcess, User
from services import require_redis
from tcp_proxy import TcpProxy

pytestmark = pytest.mark.asyncio(loop_scope="session")


@dataclass
class Pair:
    a: ServerProcess
    b: ServerProcess
    bus: TcpProxy


@pytest.fixture
async def pair(postgres_database: str) -> AsyncIterator[Pair]:
    bus = TcpProxy(await require_redis())
    await bus.start()
    # A poll far slower than any test step: only the session read can make B notice in time.
    env = {"SYNCSTREAM_POLL_SECONDS": "60"}
    servers = [ServerProcess(database_url=postgres_database, bus_url=bus.url, env=env) for _ in range(2)]
    started = [await asyncio.to_thread(server.start) for server in servers]
    try:
        yield Pair(started[0], started[1], bus)
    finally:
        for server in started:
            await asyncio.to_thread(server.stop)
        await bus.close()


def bus_down(proxy: TcpProxy) -> None:
    proxy.accepting = False
    proxy.sever()


async def signed_in_on_both(a: Api, b: Api) -> tuple[User, User]:
    """A user with two sessions, each one's caller cached on B (used there twice)."""
    user = await a.sign_up()
    second = await a.ok("POST", "/auth/sign-in", json={"email": user.email, "password": "correct-horse"})
    other = User(a.base_url, user.id, user.email, second["token"])
    for token in (user.token, other.token) * 2:
        await b.ok("GET", "/me", token=token)
    return user, other


async def test_sign_out_and_ending_sessions_take_effect_on_the_other_process_at_once(pair: Pair) -> None:
    a, b = Api(pair.a.url), Api(pair.b.url)
    try:
        bus_down(pair.bus)
        # Sign-out on A: B refuses the token on the very next request.
        user, other = await signed_in_on_both(a, b)
        await a.ok("POST", "/auth/sign-out", 204, token=other.token)
        assert_problem(await b.request("GET", "/me", token=other.token), 401, "unauthorized")
        await b.ok("GET", "/me", token=user.token)  # the other session is untouched
        # Ending one session from A.
        user, other = await signed_in_on_both(a, b)
        sessions = await a.ok("GET", "/me/sessions", token=user.token)
        [other_id] = [s["id"] for s in sessions["items"] if not s["current"]]
        await a.ok("DELETE", f"/me/sessions/{other_id}", 204, token=user.token)
        assert_problem(await b.request("GET", "/me", token=other.token), 401, "unauthorized")
        # Signing out everywhere else from A.
        user, other = await signed_in_on_both(a, b)
        await a.ok("DELETE", "/me/sessions", 204, token=user.token)
        assert_problem(await b.request("GET", "/organizations", token=other.token), 401, "unauthorized")
        await b.ok("GET", "/me", token=user.token)
    finally:
        await a.aclose()
        await b.aclose()
