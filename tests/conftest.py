"""Shared fixtures: a real server per database backend, and API helpers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest

from databases import create_postgres_database, drop_postgres_database
from harness import Api, ServerProcess

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A fresh database of each backend: the API and stream suites run once per backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'syncstream.db'}"
        return
    url = asyncio.run(create_postgres_database())
    yield url
    asyncio.run(drop_postgres_database(url))


@pytest.fixture(scope="session")
def server(database_url: str) -> Iterator[ServerProcess]:
    """One server per backend for the whole run; tests isolate themselves by creating
    their own users and organizations."""
    proc = ServerProcess(database_url=database_url).start()
    yield proc
    proc.stop()


@pytest.fixture
async def api(server: ServerProcess) -> AsyncIterator[Api]:
    client = Api(server.url)
    yield client
    await client.aclose()
