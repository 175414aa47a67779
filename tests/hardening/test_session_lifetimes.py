"""Sessions end: ``SYNCSTREAM_SESSION_IDLE_SECONDS`` after their last use and
``SYNCSTREAM_SESSION_MAX_SECONDS`` after sign-in, whichever comes first. An expired token
is 401 like a signed-out one, and a stream opened with it ends (``event: error``,
``forbidden``) when it expires, within a keep-alive sweep (at most a second).

Servers of our own with lifetimes of seconds. Nothing here sleeps or measures time: each
test awaits the stream's end, which the server sends when the session expires, and then
checks that the token is refused.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest
import pytest_asyncio

from api.support import assert_problem, create_org
from harness import Api, ServerProcess, Stream

from .support import BACKENDS, fresh_database, running_server

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest_asyncio.fixture(loop_scope="session", params=BACKENDS)
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    async with fresh_database(request.param, tmp_path) as url:
        yield url


async def expires_with_its_stream(server: ServerProcess) -> None:
    """Sign up, open a stream, and wait for the session to end it; then the token is dead."""
    api = Api(server.url)
    try:
        user = await api.sign_up()
        org = await create_org(api, user.token)
        await api.ok("GET", "/me", token=user.token)
        url = f"/organizations/{org['id']}/sync/stream?offset=now&live=sse"
        async with Stream(api.client, url, api.headers(user.token)) as stream:
            await stream.until_offset()
            error = await stream.next(wait_seconds=30)
            assert error is not None
            assert error.event == "error"
            problem = orjson.loads(error.data)
            assert (problem["type"], problem["status"]) == ("forbidden", 403)
            assert "expired" in problem["detail"]
            assert await stream.next() is None
        refused = assert_problem(await api.request("GET", "/me", token=user.token), 401, "unauthorized")
        assert "expired" in refused["detail"]
        assert_problem(await api.request("GET", url, token=user.token), 401, "unauthorized")
        # Signing in again is the way back.
        again = await api.ok("POST", "/auth/sign-in", json={"email": user.email, "password": "correct-horse"})
        await api.ok("GET", "/me", token=again["token"])
    finally:
        await api.aclose()


async def test_a_session_ends_at_its_absolute_lifetime(database_url: str) -> None:
    env = {"SYNCSTREAM_SESSION_MAX_SECONDS": "3"}
    async with running_server(database_url, env=env) as server:
        await expires_with_its_stream(server)


async def test_a_session_unused_for_its_idle_lifetime_ends(database_url: str) -> None:
    env = {"SYNCSTREAM_SESSION_IDLE_SECONDS": "3"}
    async with running_server(database_url, env=env) as server:
        await expires_with_its_stream(server)
