"""Shared fixtures: a real server per test module family, and API helpers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from harness import Api, ServerProcess


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One SQLite-backed server for the whole run; tests isolate themselves by creating
    their own users and organizations."""
    path: Path = tmp_path_factory.mktemp("db") / "syncstream.db"
    proc = ServerProcess(database_url=f"sqlite:///{path}").start()
    yield proc
    proc.stop()


@pytest.fixture
async def api(server: ServerProcess) -> AsyncIterator[Api]:
    client = Api(server.url)
    yield client
    await client.aclose()
