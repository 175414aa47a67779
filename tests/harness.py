"""Real servers for the tests: ``syncstream serve`` in a subprocess, on a real socket.

Stream tests must exercise what a client sees (headers, framing, disconnects), so the
server under test is the real CLI on a free loopback port, not an in-process app.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import resource
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx

from syncstream.stream.sse import ServerSentEvent, SSEParser

STARTUP_SECONDS = 30.0

T = TypeVar("T")

#: Test servers ping every second and hash passwords cheaply (argon2id at its minimum
#: cost: the hash is exercised, the suite does not spend minutes in it). Every test client
#: comes from 127.0.0.1, and a storm test opens hundreds of streams as one user: the
#: per-address and per-user stream quotas are lifted (tests/hardening/test_admission.py
#: sets its own).
TEST_ENV = {
    "SYNCSTREAM_KEEPALIVE_SECONDS": "1",
    "SYNCSTREAM_PASSWORD_TIME_COST": "1",
    "SYNCSTREAM_PASSWORD_MEMORY_KIB": "1024",
    "SYNCSTREAM_STREAMS_PER_ADDRESS": "1000000",
    "SYNCSTREAM_STREAMS_PER_USER": "1000000",
    # Every test signs up from 127.0.0.1; the suites that test the limit set their own.
    "SYNCSTREAM_SIGN_UPS_PER_ADDRESS": "1000000",
}


def _set_nofile(limits: tuple[int, int]) -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, limits)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ServerProcess:
    """One running ``syncstream serve``."""

    database_url: str
    bus_url: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    workers: int = 1
    log_level: str = field(default_factory=lambda: os.environ.get("SYNCSTREAM_TEST_LOG_LEVEL", "warning"))
    #: uvicorn's access log (``serve --access-log``): the stream machinery must work with it on.
    access_log: bool = False
    #: (soft, hard) RLIMIT_NOFILE of the server process, to test what it does near the limit.
    nofile: tuple[int, int] | None = None
    #: More ``serve`` flags (``--http h11``, ``--max-streams 10``, …).
    args: tuple[str, ...] = ()
    port: int = field(default_factory=free_port)
    log_path: Path | None = None
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServerProcess:
        env = {**os.environ, **TEST_ENV, **self.env}
        self.log_path = self.log_path or Path(f"/tmp/syncstream-test-{self.port}.log")
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "syncstream.cli",
                "serve",
                "--port",
                str(self.port),
                "--database-url",
                self.database_url,
                *(["--bus-url", self.bus_url] if self.bus_url else []),
                "--workers",
                str(self.workers),
                "--log-level",
                self.log_level,
                *(["--access-log"] if self.access_log else []),
                *self.args,
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=None if self.nofile is None else functools.partial(_set_nofile, self.nofile),
        )
        self.wait_ready()
        return self

    def wait_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited at start:\n{self.log()}")
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)  # polling a process we do not control: there is no event to await
        raise RuntimeError(f"server did not become healthy:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path and self.log_path.exists() else ""

    def stop(self, sig: int = signal.SIGTERM) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        code = self.process.returncode
        self.process = None
        return code

    def kill(self) -> None:
        self.stop(signal.SIGKILL)


def unique(prefix: str = "x") -> str:
    return f"{prefix}{uuid.uuid4().hex[:12]}"


class Api:
    """A small typed-enough client of the contract for tests."""

    def __init__(self, base_url: str, token: str | None = None) -> None:
        self.base_url = base_url
        self.token = token
        self.client = httpx.AsyncClient(base_url=base_url, timeout=30)

    def headers(self, token: str | None = None) -> dict[str, str]:
        token = token or self.token
        return {"Authorization": f"Bearer {token}"} if token else {}

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {**self.headers(kwargs.pop("token", None)), **kwargs.pop("headers", {})}
        return await self.client.request(method, path, headers=headers, **kwargs)

    async def ok(self, method: str, path: str, status: int = 200, **kwargs: Any) -> Any:
        response = await self.request(method, path, **kwargs)
        assert response.status_code == status, (method, path, response.status_code, response.text)
        return response.json() if response.content else None

    async def sign_up(self, email: str | None = None, name: str = "Tester") -> User:
        email = email or f"{unique('u')}@example.test"
        body = await self.ok(
            "POST", "/auth/sign-up", 201, json={"email": email, "password": "correct-horse", "name": name}
        )
        return User(self.base_url, body["user"]["id"], email, body["token"])

    async def aclose(self) -> None:
        await self.client.aclose()


@dataclass
class User:
    base_url: str
    id: str
    email: str
    token: str

    def api(self) -> Api:
        return Api(self.base_url, self.token)


async def sse_events(response: httpx.Response) -> AsyncIterator[ServerSentEvent]:
    parser = SSEParser()
    async for chunk in response.aiter_raw():
        for event in parser.feed(chunk):
            yield event


class StreamDeadline(AssertionError):
    """A stream read that did not get what it waited for within its total deadline."""


class Stream:
    """An open SSE stream read in the background into a queue of events."""

    def __init__(self, client: httpx.AsyncClient, url: str, headers: dict[str, str]) -> None:
        self.client = client
        self.url = url
        self.headers = headers
        self.events: asyncio.Queue[ServerSentEvent | None] = asyncio.Queue()
        self.response: httpx.Response | None = None
        self._task: asyncio.Task[None] | None = None
        self._opened: asyncio.Future[httpx.Response] = asyncio.get_running_loop().create_future()

    async def __aenter__(self) -> Stream:
        self._task = asyncio.create_task(self._read())
        self.response = await self._opened
        return self

    async def _read(self) -> None:
        try:
            async with self.client.stream("GET", self.url, headers=self.headers) as response:
                self._opened.set_result(response)
                if response.status_code != 200:
                    await response.aread()
                    return
                async for event in sse_events(response):
                    await self.events.put(event)
        except (httpx.HTTPError, asyncio.CancelledError) as exc:
            if not self._opened.done():
                self._opened.set_exception(exc)
        finally:
            await self.events.put(None)

    async def next(self, wait_seconds: float = 15.0) -> ServerSentEvent | None:
        """The next event (pings skipped), or None when the stream ended.

        ``wait_seconds`` is a total deadline: pings do not restart it, so a stream that
        only ever pings fails the test (with :class:`StreamDeadline`) instead of hanging it.
        """
        return await self._within(wait_seconds, self._next_not_ping(), "an event other than a ping")

    async def _next_not_ping(self) -> ServerSentEvent | None:
        while True:
            event = await self.events.get()
            if event is None or event.event != "ping":
                return event

    async def until_offset(self, wait_seconds: float = 15.0) -> tuple[list[ServerSentEvent], ServerSentEvent]:
        """The catch-up frames and the ``offset`` frame, all within ``wait_seconds`` in total."""
        return await self._within(wait_seconds, self._until_offset(), "the offset frame")

    async def _until_offset(self) -> tuple[list[ServerSentEvent], ServerSentEvent]:
        changes = []
        while True:
            event = await self._next_not_ping()
            assert event is not None, "stream ended before its offset frame"
            if event.event == "offset":
                return changes, event
            changes.append(event)

    async def _within(self, seconds: float, waiting: Awaitable[T], what: str) -> T:
        try:
            async with asyncio.timeout(seconds):
                return await waiting
        except TimeoutError:
            raise StreamDeadline(f"{self.url}: no {what} within {seconds:g} s (pings do not count)") from None

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
