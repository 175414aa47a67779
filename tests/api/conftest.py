"""Fixtures of the API tests: a system admin made with the CLI, and module-wide clients.

Set ``SYNCSTREAM_TEST_API_DATABASE_URL`` (e.g. to a PostgreSQL URL) to run these tests
against a server on that database instead of the session's SQLite one: the contract
holds on both, and some inputs only fail on one of them.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio

from harness import Api, ServerProcess, User

from .support import create_user_with_cli, sign_in

DATABASE_VARIABLE = "SYNCSTREAM_TEST_API_DATABASE_URL"


@pytest.fixture(scope="session")
def server(server: ServerProcess) -> Iterator[ServerProcess]:
    """The session's server, or one on ``SYNCSTREAM_TEST_API_DATABASE_URL`` when set."""
    url = os.environ.get(DATABASE_VARIABLE)
    if not url:
        yield server
        return
    own = ServerProcess(database_url=url).start()
    yield own
    own.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def client(server: ServerProcess) -> AsyncIterator[Api]:
    """An API client shared by a module's fixtures (``api`` is per test)."""
    shared = Api(server.url)
    yield shared
    await shared.aclose()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def system_admin(server: ServerProcess) -> AsyncIterator[User]:
    """A system admin, made the only way there is: ``syncstream user create --admin``."""
    created = create_user_with_cli(server.database_url, admin=True)
    assert created["user"]["role"] == "admin"
    api = Api(server.url)
    try:
        yield await sign_in(api, created["user"]["email"])
    finally:
        await api.aclose()
