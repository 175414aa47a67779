"""A sign-up flood cannot exhaust the server's memory: sign-ups are limited per client address
(429 + ``Retry-After``), and password hashes run a bounded number at a time (each argon2id hash
takes ``memory_kib`` of memory), with a bounded queue behind them (503 + ``Retry-After``).

Each server here is our own. The flood's server hashes at a deliberately high cost, so that a
burst of sign-ups really is in flight at once; the server counts, inside its hashing threads,
the most hashes that ever ran together and publishes it on ``/metrics``.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from api.support import PASSWORD, assert_problem
from harness import ServerProcess, unique

from .support import running_server

pytestmark = pytest.mark.asyncio(loop_scope="session")

CONCURRENCY = 2
QUEUE = 3
BURST = 40


def client(server: ServerProcess, address: str = "127.0.0.1") -> httpx.AsyncClient:
    transport = httpx.AsyncHTTPTransport(local_address=address)
    return httpx.AsyncClient(base_url=server.url, transport=transport, timeout=60)


async def sign_up(http: httpx.AsyncClient, email: str | None = None) -> httpx.Response:
    email = email or f"{unique('flood')}@example.test"
    return await http.post("/auth/sign-up", json={"email": email, "password": PASSWORD, "name": "F"})


async def metric(http: httpx.AsyncClient, name: str) -> float:
    text = (await http.get("/metrics")).text
    match = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    assert match, f"{name} is not on /metrics"
    return float(match.group(1))


@pytest_asyncio.fixture(loop_scope="session")
async def costly_server(tmp_path: Path) -> AsyncIterator[ServerProcess]:
    env = {
        # Slow hashes (a second or so each with 64 MiB): a burst is surely in flight at once.
        "SYNCSTREAM_PASSWORD_TIME_COST": "12",
        "SYNCSTREAM_PASSWORD_MEMORY_KIB": "65536",
        "SYNCSTREAM_PASSWORD_CONCURRENCY": str(CONCURRENCY),
        "SYNCSTREAM_PASSWORD_QUEUE": str(QUEUE),
    }
    async with running_server(f"sqlite:///{tmp_path / 'flood.db'}", env=env) as server:
        yield server


async def test_a_burst_of_sign_ups_never_runs_more_hashes_than_the_bound(
    costly_server: ServerProcess,
) -> None:
    async with client(costly_server) as http:
        responses = await asyncio.gather(*(sign_up(http) for _ in range(BURST)))
        statuses = sorted(r.status_code for r in responses)
        assert set(statuses) <= {201, 503}, statuses
        refused = [r for r in responses if r.status_code == 503]
        # At most CONCURRENCY hashing and QUEUE waiting at any moment: the rest of a
        # burst that arrives while the first hash runs is refused at once.
        assert refused, statuses
        assert statuses.count(201) >= CONCURRENCY
        for response in refused:
            assert_problem(response, 503, "unavailable")
            assert int(response.headers["retry-after"]) >= 1
        # The most hashes that ever ran at once, counted where they run.
        assert await metric(http, "syncstream_password_hashes_peak") == CONCURRENCY
        assert await metric(http, "syncstream_password_hashes_running") == 0
        # Once the flood has passed, an account made in it signs in.
        made = next(r for r in responses if r.status_code == 201)
        email = made.json()["user"]["email"]
        signed_in = await http.post("/auth/sign-in", json={"email": email, "password": PASSWORD})
        assert signed_in.status_code == 200, signed_in.text


async def test_sign_ups_from_one_address_are_limited(tmp_path: Path) -> None:
    env = {"SYNCSTREAM_SIGN_UPS_PER_ADDRESS": "3"}
    async with (
        running_server(f"sqlite:///{tmp_path / 'limited.db'}", env=env) as server,
        client(server, "127.0.0.2") as flood,
        client(server, "127.0.0.3") as other,
    ):
        for _ in range(2):
            assert (await sign_up(flood)).status_code == 201
        # A sign-up that fails (a taken email) still cost a hash, and counts.
        taken = (await sign_up(other)).json()["user"]["email"]
        assert (await sign_up(flood, taken)).status_code == 409
        refused = await sign_up(flood)
        assert_problem(refused, 429, "too_many_requests")
        assert 1 <= int(refused.headers["retry-after"]) <= 3600
        # A forged X-Forwarded-For from an address that is not a trusted proxy changes nothing.
        forged = await flood.post(
            "/auth/sign-up",
            json={"email": f"{unique('f')}@example.test", "password": PASSWORD, "name": "F"},
            headers={"X-Forwarded-For": "203.0.113.7"},
        )
        assert_problem(forged, 429, "too_many_requests")
        # Another address signs up as usual.
        assert (await sign_up(other)).status_code == 201
