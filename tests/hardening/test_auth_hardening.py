"""No way in, the rest: password guessing is slowed (per account and client address pair, and
per client address, 429 with ``Retry-After``, and a forged ``X-Forwarded-For`` does not dodge
it) without letting a stranger lock the owner out; the session
cookie is HttpOnly, SameSite=Lax and Secure behind HTTPS; CORS is off unless configured,
streams included; and nothing secret reaches the server's log, even at debug level.

The server here is our own (the shared one must not be rate-limited by these tests): a
small sign-in allowance, CORS configured, log level debug. Clients talk to it from several
loopback addresses (127.0.0.2, .3, …) so that each test's failures count against an address
of its own. uvicorn trusts proxy headers from 127.0.0.1 only (its default
``forwarded_allow_ips``), so 127.0.0.1 plays the TLS-terminating proxy and the other
addresses play clients that forge its headers.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from api.support import PASSWORD, assert_problem
from databases import create_postgres_database, drop_postgres_database
from harness import ServerProcess, unique
from services import require_postgres
from syncstream.auth.tokens import hash_token

from .support import open_stream

pytestmark = pytest.mark.asyncio(loop_scope="session")

ATTEMPTS = 3  # failed sign-ins per account per window; an address may fail ten times as often
ALLOWED_ORIGIN = "https://app.example.test"
WRONG_PASSWORD = "wrong-password-zebra"


@dataclass
class Guarded:
    server: ServerProcess
    #: Every secret the tests hand the server, to look for in its log at the end.
    secrets: set[str] = field(default_factory=set)

    def client(self, address: str = "127.0.0.1") -> httpx.AsyncClient:
        transport = httpx.AsyncHTTPTransport(local_address=address)
        return httpx.AsyncClient(base_url=self.server.url, transport=transport, timeout=30)

    async def sign_up(self) -> tuple[str, str]:
        email = f"{unique('g')}@example.test"
        async with self.client() as client:
            response = await client.post(
                "/auth/sign-up", json={"email": email, "password": PASSWORD, "name": "G"}
            )
        assert response.status_code == 201, response.text
        token: str = response.json()["token"]
        self.secrets.add(token)
        return email, token


def debug_server(directory: Path) -> Iterator[ServerProcess]:
    env = {
        "SYNCSTREAM_SIGN_IN_ATTEMPTS": str(ATTEMPTS),
        "SYNCSTREAM_CORS_ORIGINS": f"{ALLOWED_ORIGIN}, https://other.example.test",
    }
    server = ServerProcess(database_url=f"sqlite:///{directory / 'guarded.db'}", env=env, log_level="debug")
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture(scope="module")
def guarded_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    yield from debug_server(tmp_path_factory.mktemp("guarded"))


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def guarded(guarded_server: ServerProcess) -> AsyncIterator[Guarded]:
    yield Guarded(guarded_server, {PASSWORD, WRONG_PASSWORD})


async def sign_in(client: httpx.AsyncClient, email: str, password: str, **headers: str) -> httpx.Response:
    return await client.post("/auth/sign-in", json={"email": email, "password": password}, headers=headers)


def assert_too_many(response: httpx.Response) -> None:
    assert_problem(response, 429, "too_many_requests")
    assert int(response.headers["retry-after"]) >= 1


# -- guessing ----------------------------------------------------------------------------------


async def test_guessing_is_slowed_for_the_guesser_and_does_not_lock_the_owner_out(guarded: Guarded) -> None:
    victim, _ = await guarded.sign_up()
    bystander, _ = await guarded.sign_up()
    async with guarded.client("127.0.0.2") as attacker:
        for _ in range(ATTEMPTS):
            assert_problem(await sign_in(attacker, victim, WRONG_PASSWORD), 401, "unauthorized")
        # Now even the right password is refused to the guesser: it cannot tell which guess was right.
        assert_too_many(await sign_in(attacker, victim, PASSWORD))
        assert_too_many(await sign_in(attacker, victim, WRONG_PASSWORD))
        # Another account from the same address is not locked out by it.
        response = await sign_in(attacker, bystander, PASSWORD)
        assert response.status_code == 200
        guarded.secrets.add(response.json()["token"])
    # The owner, from an address of their own, signs in: a stranger cannot lock anyone out.
    async with guarded.client("127.0.0.3") as owner:
        response = await sign_in(owner, victim, PASSWORD)
        assert response.status_code == 200, response.text
        guarded.secrets.add(response.json()["token"])


async def test_spraying_from_one_address_is_slowed_for_that_address(guarded: Guarded) -> None:
    fresh, _ = await guarded.sign_up()
    sprayed = [f"{unique('sprayed')}@example.test" for _ in range(10)]
    async with guarded.client("127.0.0.4") as sprayer:
        for n in range(10 * ATTEMPTS):  # ATTEMPTS failures on each of 10 accounts: no account limit hit
            assert_problem(await sign_in(sprayer, sprayed[n % 10], WRONG_PASSWORD), 401, "unauthorized")
        assert_too_many(await sign_in(sprayer, fresh, PASSWORD))
        # A forged X-Forwarded-For from an address that is not a trusted proxy changes nothing.
        assert_too_many(await sign_in(sprayer, fresh, PASSWORD, **{"X-Forwarded-For": "203.0.113.9"}))
    async with guarded.client("127.0.0.5") as someone_else:
        response = await sign_in(someone_else, fresh, PASSWORD)
        assert response.status_code == 200
        guarded.secrets.add(response.json()["token"])


# -- the session cookie ------------------------------------------------------------------------


def session_cookie(response: httpx.Response) -> dict[str, str | bool]:
    """The attributes of the Set-Cookie for the session (lower-cased names)."""
    headers = [h for h in response.headers.get_list("set-cookie") if h.startswith("syncstream_session=")]
    assert len(headers) == 1, response.headers.get_list("set-cookie")
    first, *attributes = (part.strip() for part in headers[0].split(";"))
    parsed: dict[str, str | bool] = {"value": first.partition("=")[2]}
    for attribute in attributes:
        name, has_value, value = attribute.partition("=")
        parsed[name.lower()] = value if has_value else True
    return parsed


async def test_the_session_cookie_is_httponly_samesite_and_secure_behind_https(guarded: Guarded) -> None:
    email, _ = await guarded.sign_up()
    https = {"X-Forwarded-Proto": "https"}
    async with guarded.client("127.0.0.1") as proxy, guarded.client("127.0.0.6") as forger:
        plain = await sign_in(proxy, email, PASSWORD)
        behind_tls = await sign_in(proxy, email, PASSWORD, **https)
        forged = await sign_in(forger, email, PASSWORD, **https)
        for response in (plain, behind_tls, forged):
            assert response.status_code == 200
            cookie = session_cookie(response)
            assert cookie["value"] == response.json()["token"]
            guarded.secrets.add(response.json()["token"])
            assert cookie["httponly"] is True
            assert str(cookie["samesite"]).lower() == "lax"
            assert cookie["path"] == "/"
        assert "secure" not in session_cookie(plain)
        assert session_cookie(behind_tls)["secure"] is True
        assert "secure" not in session_cookie(forged)  # only a trusted proxy says it is HTTPS

        signed_up = await proxy.post(
            "/auth/sign-up",
            json={"email": f"{unique('c')}@example.test", "password": PASSWORD, "name": "C"},
            headers=https,
        )
        assert signed_up.status_code == 201
        guarded.secrets.add(signed_up.json()["token"])
        assert session_cookie(signed_up)["secure"] is True

        # Signing out clears it with the same attributes (a browser matches them by name and path).
        token = behind_tls.json()["token"]
        out = await proxy.post("/auth/sign-out", headers={**https, "Authorization": f"Bearer {token}"})
        assert out.status_code == 204
        cleared = session_cookie(out)
        assert cleared["value"] in ("", '""')
        assert cleared["max-age"] == "0"
        assert cleared["httponly"] is True
        assert cleared["path"] == "/"
        assert cleared["secure"] is True


# -- CORS --------------------------------------------------------------------------------------


def preflight(origin: str) -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization",
    }


async def test_cors_is_off_by_default(server: ServerProcess) -> None:
    """The shared server runs without SYNCSTREAM_CORS_ORIGINS."""
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        for response in (
            await client.get("/pages", headers={"Origin": ALLOWED_ORIGIN}),
            await client.options("/pages", headers=preflight(ALLOWED_ORIGIN)),
        ):
            assert "access-control-allow-origin" not in response.headers
            assert "access-control-allow-credentials" not in response.headers
    stream = await open_stream(
        server.port, "/pages/stream?offset=now&live=sse", headers={"Origin": ALLOWED_ORIGIN}
    )
    stream.abort()
    assert "access-control-allow-origin" not in stream.headers


async def test_cors_allows_exactly_the_configured_origins(guarded: Guarded) -> None:
    _, token = await guarded.sign_up()
    async with guarded.client() as client:
        allowed = await client.get(
            "/me", headers={"Origin": ALLOWED_ORIGIN, "Authorization": f"Bearer {token}"}
        )
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
        assert allowed.headers["access-control-allow-credentials"] == "true"
        assert "origin" in allowed.headers.get("vary", "").lower()

        ok = await client.options("/pages", headers=preflight(ALLOWED_ORIGIN))
        assert ok.status_code == 200
        assert ok.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
        assert "POST" in ok.headers["access-control-allow-methods"]

        for origin in ("https://evil.example.test", "null", "https://app.example.test.evil.test"):
            refused = await client.get("/pages", headers={"Origin": origin})
            assert "access-control-allow-origin" not in refused.headers, origin
            preflighted = await client.options("/pages", headers=preflight(origin))
            assert "access-control-allow-origin" not in preflighted.headers, origin


async def test_cors_reaches_the_streams_too(guarded: Guarded) -> None:
    """What a browser opens with ``new EventSource(url, {withCredentials: true})``."""
    stream = await open_stream(
        guarded.server.port, "/pages/stream?offset=now&live=sse", headers={"Origin": ALLOWED_ORIGIN}
    )
    stream.abort()
    assert stream.headers.get("access-control-allow-origin") == ALLOWED_ORIGIN
    assert stream.headers.get("access-control-allow-credentials") == "true"


# -- the log -----------------------------------------------------------------------------------


async def test_no_secret_reaches_the_log_at_debug_level(guarded: Guarded) -> None:
    """Runs last in this module: every other test's passwords and tokens are in ``secrets``."""
    email, token = await guarded.sign_up()
    auth = {"Authorization": f"Bearer {token}"}
    async with guarded.client() as client:
        org = (
            await client.post("/organizations", json={"name": "L", "slug": unique("l-")}, headers=auth)
        ).json()
        await client.post(f"/organizations/{org['id']}/attachments", json={"name": "x"}, headers=auth)
        await client.get("/me", headers={"Cookie": f"syncstream_session={token}"})
        await client.post("/auth/sign-up", json={"email": email, "password": PASSWORD, "name": "dup"})  # 409
        await client.post(
            "/auth/sign-up", json={"email": "short@x.test", "password": "short", "name": "S"}
        )  # 422
        assert (await sign_in(client, email, WRONG_PASSWORD)).status_code == 401
        stream = await open_stream(
            guarded.server.port, f"/organizations/{org['id']}/sync/stream?live=sse", token=token
        )
        stream.abort()
        assert (await client.post("/auth/sign-out", headers=auth)).status_code == 204
        assert (await client.get("/me", headers=auth)).status_code == 401
    guarded.secrets |= {"short"}
    log = guarded.server.log()
    assert "stream open" in log, "the log was not captured at the level asked for"
    found = {secret for secret in guarded.secrets if secret in log}
    found |= {f"hash of {t[:6]}…" for t in guarded.secrets if len(t) > 30 and hash_token(t) in log}
    assert not found, f"secrets in the server log: {sorted(found)}"


async def test_a_bus_password_does_not_reach_the_log(tmp_path: Path) -> None:
    await require_postgres()
    url = await create_postgres_database()
    try:
        secret = f"bus-secret-{os.getpid()}"
        bus = url.replace("postgresql://postgres@", f"postgresql://postgres:{secret}@")
        assert secret in bus, "the test database URL has an unexpected shape"
        server = ServerProcess(
            database_url=f"sqlite:///{tmp_path / 'bus.db'}", bus_url=bus, log_level="debug"
        )
        try:
            await asyncio.to_thread(server.start)  # trust authentication: the password is not checked
        finally:
            await asyncio.to_thread(server.stop)
        log = server.log()
        assert "bus" in log, "the log was not captured at the level asked for"
        assert secret not in log
    finally:
        await drop_postgres_database(url)
