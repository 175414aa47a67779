"""Find the real services the integration tests run against, or skip (or fail) with a clear reason.

Each `require_*()` returns the service's URL (from SYNCSTREAM_TEST_*_URL, with a local default)
once it answers. When it does not, the test is skipped, unless SYNCSTREAM_REQUIRE_SERVICES=1,
as in CI, where a missing service must fail loudly rather than quietly skip the tests that need it.
Each service is probed once per test run.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

import pytest

POSTGRES_URL_VARIABLE = "SYNCSTREAM_TEST_POSTGRES_URL"
REDIS_URL_VARIABLE = "SYNCSTREAM_TEST_REDIS_URL"
NATS_URL_VARIABLE = "SYNCSTREAM_TEST_NATS_URL"
REQUIRE_VARIABLE = "SYNCSTREAM_REQUIRE_SERVICES"

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_NATS_URL = "nats://127.0.0.1:4222"

PROBE_TIMEOUT = 5.0

_probed: dict[str, str | None] = {}
"""URL -> None when it answered, or why it did not."""


def postgres_url() -> str:
    return os.environ.get(POSTGRES_URL_VARIABLE, DEFAULT_POSTGRES_URL)


def redis_url() -> str:
    return os.environ.get(REDIS_URL_VARIABLE, DEFAULT_REDIS_URL)


def nats_url() -> str:
    return os.environ.get(NATS_URL_VARIABLE, DEFAULT_NATS_URL)


async def require_postgres() -> str:
    """The PostgreSQL URL, as libpq and asyncpg take it (postgresql+asyncpg:// is turned into postgresql://)."""
    url = postgres_url()
    parts = urlsplit(url)
    if parts.scheme == "postgresql+asyncpg":
        url = parts._replace(scheme="postgresql").geturl()
    return await _require("PostgreSQL", url, _probe_postgres)


async def require_redis() -> str:
    return await _require("Redis", redis_url(), _probe_redis)


async def require_nats() -> str:
    return await _require("NATS", nats_url(), _probe_nats)


def services_required() -> bool:
    return os.environ.get(REQUIRE_VARIABLE) == "1"


async def _require(name: str, url: str, probe: Callable[[str], Awaitable[None]]) -> str:
    if url not in _probed:
        try:
            await probe(url)
        except Exception as exc:
            _probed[url] = f"{type(exc).__name__}: {exc}"
        else:
            _probed[url] = None
    error = _probed[url]
    if error is None:
        return url
    reason = f"{name} not reachable at {_redact(url)}: {error}"
    if services_required():
        pytest.fail(f"{reason} (and {REQUIRE_VARIABLE}=1)", pytrace=False)
    pytest.skip(reason)


async def _probe_postgres(url: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(url, timeout=PROBE_TIMEOUT)
    await connection.close()


async def _probe_redis(url: str) -> None:
    import redis.asyncio

    client = redis.asyncio.Redis.from_url(
        url, socket_connect_timeout=PROBE_TIMEOUT, socket_timeout=PROBE_TIMEOUT
    )
    try:
        await client.ping()
    finally:
        await client.aclose()


async def _probe_nats(url: str) -> None:
    import nats

    errors: list[Exception] = []

    async def remember(error: Exception) -> None:
        """Keep the real cause: nats-py would log it and then raise a bare NoServersError."""
        errors.append(error)

    try:
        # Two quick attempts and no waiting: nats-py otherwise retries for minutes.
        client = await nats.connect(
            url,
            connect_timeout=int(PROBE_TIMEOUT),
            allow_reconnect=False,
            max_reconnect_attempts=1,
            reconnect_time_wait=0,
            error_cb=remember,
        )
    except Exception as exc:
        if errors:
            raise errors[-1] from exc
        raise
    await client.close()


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return parts._replace(netloc=f"{parts.username or ''}:***@{parts.netloc.rpartition('@')[2]}").geturl()
