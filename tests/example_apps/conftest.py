"""The example application (examples/tasks) served by a real uvicorn, once per database backend."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from databases import create_postgres_database, drop_postgres_database
from harness import STARTUP_SECONDS, TEST_ENV, Api, free_port

ROOT = Path(__file__).resolve().parents[2]


class AppServer:
    """``uvicorn <app>`` in a subprocess on a free loopback port, as a team would run it."""

    def __init__(self, app: str, database_url: str, env: dict[str, str] | None = None) -> None:
        self.app = app
        self.database_url = database_url
        self.env = env or {}
        self.port = free_port()
        self.log_path = Path(f"/tmp/syncstream-example-{self.port}.log")
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> AppServer:
        env = {**os.environ, **TEST_ENV, "SYNCSTREAM_DATABASE_URL": self.database_url, **self.env}
        command = [sys.executable, "-m", "uvicorn", self.app, "--host", "127.0.0.1", "--port", str(self.port)]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"example exited at start:\n{self.log_path.read_text()}")
            try:
                if httpx.get(self.url + "/openapi.json", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)  # polling a process we do not control: there is no event to await
        raise RuntimeError(f"example did not start:\n{self.log_path.read_text()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def tasks_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AppServer]:
    """The example on a database of its own, per backend."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('tasks') / 'tasks.db'}"
    else:
        url = asyncio.run(create_postgres_database())
    server = AppServer("examples.tasks.app:app", url).start()
    yield server
    server.stop()
    if request.param == "postgresql":
        asyncio.run(drop_postgres_database(url))


@pytest.fixture
async def tasks_api(tasks_server: AppServer) -> AsyncIterator[Api]:
    client = Api(tasks_server.url)
    yield client
    await client.aclose()
