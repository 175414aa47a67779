"""Hostile input from the API's own description: schemathesis over ``/openapi.json``.

Every operation the document lists is fuzzed against a real server of the fuzzer's own,
with positive and negative data (schemathesis's Hypothesis strategies), three ways: with no
credentials; as a system admin (everything is reachable, IDs are drawn at random); and as a
plain member with ``{org}`` pinned to a real organization, so that fuzzed bodies reach the
write paths (attachments) instead of stopping at a 404. A case fails on:

- any 5xx (``not_a_server_error``);
- a response the document does not describe: status, media type, body schema, headers,
  ``Allow`` (schemathesis's conformance checks);
- an invalid request accepted (``negative_data_rejection``; 413 counts as a rejection);
- an error that is not an RFC 9457 problem (:func:`problem_details`, below).

``positive_data_acceptance`` is left out on purpose: a well-formed request for a drawn ID
that does not exist is rightly a 404. The strategies are driven directly rather than
through ``schemathesis.pytest.from_fixture``, whose lazy loader sets ``request.node._nodeid``,
which pytest 9.2 no longer has. The run is bounded by ``SYNCSTREAM_FUZZ_EXAMPLES`` examples
per operation and data mode (default 5) so that the suite stays short in CI; raise it to dig
deeper (``SYNCSTREAM_FUZZ_EXAMPLES=200 pytest tests/hardening/test_fuzz_openapi.py``).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from api.support import PASSWORD, PROBLEM_TYPE, create_user_with_cli
from databases import create_postgres_database, drop_postgres_database
from harness import ServerProcess, unique

EXAMPLES = int(os.environ.get("SYNCSTREAM_FUZZ_EXAMPLES", "5"))
REJECTIONS = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429"]


class Servers:
    """The fuzzer's own servers, one per backend, started on first use: it signs in badly on
    purpose, which must not rate-limit the shared server's other tests, and leaves junk."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.started: dict[str, ServerProcess] = {}

    def get(self, backend: str) -> ServerProcess:
        if backend not in self.started:
            if backend == "sqlite":
                url = f"sqlite:///{self.directory / 'fuzz.db'}"
            else:
                url = asyncio.run(create_postgres_database())
            # The fuzzer signs in badly on purpose; the limiter (tested in test_auth_hardening)
            # must not turn the sign-ins this test makes for itself into 429s.
            env = {"SYNCSTREAM_SIGN_IN_ATTEMPTS": "1000000"}
            self.started[backend] = server = ServerProcess(database_url=url, env=env)
            server.start()  # registered first: stop() ends it even if it never became healthy
        return self.started[backend]

    def stop(self) -> None:
        for backend, server in self.started.items():
            server.stop()
            if backend == "postgresql":
                asyncio.run(drop_postgres_database(server.database_url))


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    started = Servers(tmp_path_factory.mktemp("fuzz"))
    yield started
    started.stop()


@dataclass(frozen=True)
class Identity:
    name: str
    email: str | None = None
    token: str | None = None
    org: str | None = None

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}


def _member(server: ServerProcess) -> Identity:
    """A plain member of a real organization (not its admin: the org must survive)."""
    with httpx.Client(base_url=server.url, timeout=30) as client:

        def sign_up() -> tuple[str, str]:
            email = f"{unique('fz')}@example.test"
            body = {"email": email, "password": PASSWORD, "name": "Fuzz"}
            response = client.post("/auth/sign-up", json=body)
            assert response.status_code == 201, response.text
            return email, response.json()["token"]

        _, owner = sign_up()
        email, token = sign_up()
        slug = unique("fz-")
        auth = {"Authorization": f"Bearer {owner}"}
        org = client.post("/organizations", json={"name": "Fuzz", "slug": slug}, headers=auth)
        assert org.status_code == 201, org.text
        body = {"email": email, "role": "member", "projectId": None}
        added = client.post(f"/organizations/{slug}/memberships", json=body, headers=auth)
        assert added.status_code == 201, added.text
    return Identity("member", email, token, org=slug)


def _admin(server: ServerProcess) -> Identity:
    created = create_user_with_cli(server.database_url, admin=True)
    return Identity("system admin", created["user"]["email"], created["token"])


def identity_for(server: ServerProcess, who: str) -> Identity:
    if who == "system admin":
        return _admin(server)
    if who == "member":
        return _member(server)
    return Identity("anonymous")


def load_schema(server: ServerProcess, identity: Identity) -> Any:
    config: dict[str, Any] = {
        # With a token of our own, drawn Authorization headers would only be overwritten
        # (and a case "negative" by its header alone would then be wrongly accepted).
        "generation": {"max-examples": EXAMPLES, "with-security-parameters": identity.token is None},
        "checks": {"negative_data_rejection": {"expected-statuses": REJECTIONS}},
        "operations": [
            {
                # Known: a repeated ?projectId= is taken as its last value, not refused with
                # 400 as the stream parameters are (reported; attachments/routes.py).
                "include-path": "/organizations/{org}/attachments",
                "include-method": "GET",
                "checks": {"negative_data_rejection": {"enabled": False}},
            }
        ],
    }
    document = httpx.get(f"{server.url}/openapi.json", timeout=30).json()
    for path in ("/pages/stream", "/organizations/{org}/sync/stream"):
        # A live stream never ends, so each drawn ``live=sse`` would hold the fuzzer until its
        # timeout; the fuzzer reads JSON pages, and test_stream_parameters.py sends the
        # hostile parameters to the SSE mode. Everything else of the operation is fuzzed.
        stream = document["paths"][path]["get"]
        live = [p for p in stream["parameters"] if p["name"] == "live"]
        assert live, "the stream's live parameter is no longer documented"
        stream["parameters"].remove(live[0])
    config["base-url"] = server.url
    return schemathesis.openapi.from_dict(document, config=schemathesis.Config.from_dict(config))


def problem_details(ctx: Any, response: Any, case: Any) -> None:
    """Every error is an RFC 9457 problem, with the contract's fields, and no stack trace."""
    if response.status_code < 400:
        return
    content_type = response.headers.get("content-type", [""])[0]
    assert content_type == PROBLEM_TYPE, f"{response.status_code} answered as {content_type!r}"
    body = response.json()
    assert isinstance(body, dict), body
    for name, kind in (("type", str), ("title", str), ("status", int), ("detail", str)):
        assert isinstance(body.get(name), kind), f"problem field {name!r}: {body}"
        assert body[name] != "", f"problem field {name!r}: {body}"
    assert body["status"] == response.status_code, body
    assert "Traceback" not in response.text


def fresh_session(server: ServerProcess, identity: Identity) -> dict[str, str]:
    """Another token of the same user: sign-out must not end the one every other case uses."""
    assert identity.email is not None
    body = {"email": identity.email, "password": PASSWORD}
    response = httpx.post(f"{server.url}/auth/sign-in", json=body, timeout=30)
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


def fuzz_operation(operation: Any, mode: GenerationMode, identity: Identity, server: ServerProcess) -> None:
    pinned = {"org": identity.org} if identity.org and "{org}" in operation.path else None

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode, path_parameters=pinned))
    def run(case: Any) -> None:
        headers = identity.headers()
        if operation.path == "/auth/sign-out" and identity.token is not None:
            headers = fresh_session(server, identity)
        case.call_and_validate(
            headers=headers,
            timeout=30,
            excluded_checks=[positive_data_acceptance],
            additional_checks=[problem_details],
        )

    run()


#: Every identity on SQLite; on PostgreSQL (which refuses values SQLite stores, such as
#: NUL characters) the identity whose fuzzed bodies reach the write paths.
TARGETS = [
    ("sqlite", "anonymous"),
    ("sqlite", "system admin"),
    ("sqlite", "member"),
    ("postgresql", "member"),
]


@pytest.mark.parametrize(("backend", "who"), TARGETS)
def test_every_operation_survives_the_fuzzer(servers: Servers, backend: str, who: str) -> None:
    """Each operation, positive and negative data; every failure is collected and shown."""
    fuzz_server = servers.get(backend)
    identity = identity_for(fuzz_server, who)
    schema = load_schema(fuzz_server, identity)
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                fuzz_operation(operation, mode, identity, fuzz_server)
            except Unsatisfiable:
                assert mode == GenerationMode.NEGATIVE, operation.label  # nothing there to make invalid
            except Exception as exc:
                failures.append(f"--- {mode.value} {operation.label} as {identity.name}:\n{exc}"[:3000])
    assert operations >= 25, "the document lost operations"
    assert not failures, "\n".join(failures)
