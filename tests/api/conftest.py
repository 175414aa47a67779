"""Fixtures of the API tests: a system admin made with the CLI, and module-wide clients."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from harness import Api, ServerProcess, User

from .support import create_user_with_cli, sign_in


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
