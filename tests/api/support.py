"""Helpers for the tests of the application half of the contract.

Activities are observed the way a client observes them: through the JSON mode of the
streams (``GET /organizations/{org}/sync/stream`` and ``GET /pages/stream``), reading
from a cursor taken just before the change under test.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from typing import Any

import httpx

from harness import Api, User, unique

#: The password ``Api.sign_up`` gives every user.
PASSWORD = "correct-horse"
PROBLEM_TYPE = "application/problem+json"
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")

USER_KEYS = {"id", "email", "name", "role", "createdAt"}
ORG_KEYS = {"id", "name", "slug", "createdAt"}
PROJECT_KEYS = {"id", "organizationId", "name", "createdAt"}
MEMBERSHIP_KEYS = {"id", "userId", "organizationId", "projectId", "role", "createdAt"}
ATTACHMENT_KEYS = {
    "id",
    "organizationId",
    "projectId",
    "name",
    "url",
    "contentType",
    "size",
    "createdBy",
    "createdAt",
    "updatedAt",
}
PAGE_KEYS = {"id", "title", "content", "createdBy", "createdAt", "updatedAt"}
MESSAGE_KEYS = {
    "activityId",
    "action",
    "entityType",
    "entityId",
    "organizationId",
    "projectId",
    "changedKeys",
    "createdAt",
    "tx",
    "data",
}


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """``python -m syncstream.cli ARGS``, the way an operator runs it."""
    return subprocess.run(
        [sys.executable, "-m", "syncstream.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def create_user_with_cli(
    database_url: str, *, admin: bool = False, email: str | None = None
) -> dict[str, Any]:
    """A user made by ``syncstream user create``; returns the printed JSON."""
    email = email or f"{unique('cli')}@example.test"
    flags = ["--admin"] if admin else []
    result = run_cli("user", "create", email, "--password", PASSWORD, "--database-url", database_url, *flags)
    assert result.returncode == 0, result.stderr
    created: dict[str, Any] = json.loads(result.stdout)
    return created


async def sign_in(api: Api, email: str, password: str = PASSWORD) -> User:
    body = await api.ok("POST", "/auth/sign-in", json={"email": email, "password": password})
    return User(api.base_url, body["user"]["id"], email, body["token"])


def anonymous(api: Api) -> httpx.AsyncClient:
    """A client with no token and an empty cookie jar (``Api`` keeps the session cookies
    its sign-ups received, which would authenticate it)."""
    return httpx.AsyncClient(base_url=api.base_url, timeout=30)


def assert_problem(response: httpx.Response, status: int, type_: str) -> dict[str, Any]:
    """The response is the contract's RFC 9457 problem, with no trace of a stack."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"] == PROBLEM_TYPE
    body: dict[str, Any] = response.json()
    assert {"type", "title", "status", "detail"} <= set(body), body
    assert body["type"] == type_
    assert body["status"] == status
    assert isinstance(body["title"], str)
    assert body["title"]
    assert isinstance(body["detail"], str)
    assert body["detail"]
    assert "Traceback" not in response.text
    assert 'File "' not in response.text
    return body


async def create_org(api: Api, token: str) -> dict[str, Any]:
    slug = unique("o")
    org: dict[str, Any] = await api.ok(
        "POST", "/organizations", 201, json={"name": f"Org {slug}", "slug": slug}, token=token
    )
    return org


async def create_project(api: Api, token: str, org_id: str) -> dict[str, Any]:
    project: dict[str, Any] = await api.ok(
        "POST", f"/organizations/{org_id}/projects", 201, json={"name": unique("p")}, token=token
    )
    return project


async def add_member(
    api: Api, token: str, org_id: str, email: str, role: str = "member", project_id: str | None = None
) -> dict[str, Any]:
    membership: dict[str, Any] = await api.ok(
        "POST",
        f"/organizations/{org_id}/memberships",
        201,
        json={"email": email, "role": role, "projectId": project_id},
        token=token,
    )
    return membership


async def stream_cursor(api: Api, path: str, token: str | None = None) -> str:
    """Where a stream stands now, to read only what happens next."""
    page = await api.ok("GET", path, params={"offset": "now"}, token=token)
    cursor: str | None = page["cursor"]
    return "-1" if cursor is None else cursor


async def stream_after(api: Api, path: str, cursor: str, token: str | None = None) -> list[dict[str, Any]]:
    """Every message of the stream after ``cursor``, following ``hasMore``."""
    messages: list[dict[str, Any]] = []
    while True:
        page = await api.ok("GET", path, params={"offset": cursor, "limit": "1000"}, token=token)
        messages.extend(page["activities"])
        if not page["hasMore"]:
            return messages
        cursor = page["cursor"]


def about(messages: list[dict[str, Any]], entity_id: str) -> list[dict[str, Any]]:
    return [m for m in messages if m["entityId"] == entity_id]


def assert_message(message: dict[str, Any]) -> None:
    """The ``StreamMessage`` shape of the contract."""
    assert set(message) == MESSAGE_KEYS, message
    assert message["activityId"].isdigit()
    assert TIMESTAMP.match(message["createdAt"])
