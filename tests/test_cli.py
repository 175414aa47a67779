"""The command line: ``syncstream user create`` and ``syncstream activities prune``."""

from __future__ import annotations

import functools
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from api.support import PASSWORD, TIMESTAMP, USER_KEYS, run_cli
from harness import ServerProcess, unique
from syncstream.activities.model import NewActivity
from syncstream.activities.transports import doorbell_from_url
from syncstream.activities.writer import ActivityWriter, WriteTransaction
from syncstream.db.engine import Database
from syncstream.db.migrate import upgrade


def new_email() -> str:
    return f"{unique('cli')}@example.test"


def create_user(database_url: str, email: str, *flags: str) -> dict[str, object]:
    result = run_cli("user", "create", email, "--password", PASSWORD, "--database-url", database_url, *flags)
    assert result.returncode == 0, result.stderr
    printed: dict[str, object] = json.loads(result.stdout)
    return printed


def test_user_create_prints_the_user_and_a_token_that_works(server: ServerProcess) -> None:
    email = new_email()
    printed = create_user(server.database_url, email, "--name", "Grace")
    assert set(printed) == {"user", "token"}
    user = printed["user"]
    assert isinstance(user, dict)
    assert set(user) == USER_KEYS
    assert (user["email"], user["name"], user["role"]) == (email, "Grace", "user")
    assert TIMESTAMP.match(user["createdAt"])
    me = httpx.get(f"{server.url}/me", headers={"Authorization": f"Bearer {printed['token']}"}, timeout=30)
    assert me.status_code == 200
    assert me.json()["user"] == user
    # The password given on the command line signs in too.
    signed_in = httpx.post(
        f"{server.url}/auth/sign-in", json={"email": email, "password": PASSWORD}, timeout=30
    )
    assert signed_in.status_code == 200
    pages = httpx.post(
        f"{server.url}/pages",
        json={"title": "t", "content": "c"},
        headers={"Authorization": f"Bearer {printed['token']}"},
        timeout=30,
    )
    assert pages.status_code == 403  # not an admin


def test_user_create_admin_makes_a_system_admin(server: ServerProcess) -> None:
    printed = create_user(server.database_url, new_email(), "--admin")
    user = printed["user"]
    assert isinstance(user, dict)
    assert user["role"] == "admin"
    assert user["name"]  # a default name
    headers = {"Authorization": f"Bearer {printed['token']}"}
    assert httpx.get(f"{server.url}/me", headers=headers, timeout=30).json()["user"]["role"] == "admin"
    page = httpx.post(
        f"{server.url}/pages", json={"title": "By root", "content": ""}, headers=headers, timeout=30
    )
    assert page.status_code == 201, page.text


def test_a_duplicate_email_fails_clearly(server: ServerProcess) -> None:
    email = new_email()
    create_user(server.database_url, email)
    # Emails are compared without case, as at sign-up.
    result = run_cli(
        "user", "create", email.upper(), "--password", PASSWORD, "--database-url", server.database_url
    )
    assert result.returncode != 0
    assert result.stdout == ""
    assert email in result.stderr
    assert "exists" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_short_password_is_refused(server: ServerProcess) -> None:
    result = run_cli(
        "user", "create", new_email(), "--password", "short", "--database-url", server.database_url
    )
    assert result.returncode != 0
    assert "8 characters" in result.stderr
    assert "Traceback" not in result.stderr


# Where the password comes from (prompt, environment) and refusals of a missing database: see
# tests/test_cli_commands.py.


# -- activities prune --------------------------------------------------------------------------


async def write_activities(database_url: str, count: int) -> list[int]:
    database = Database.connect(database_url)
    try:
        await upgrade(database)
        writer = ActivityWriter(database, doorbell_from_url("memory://", channel=unique("cli-")))

        def record(tx: WriteTransaction, n: int) -> int:
            return tx.record(
                NewActivity(
                    action="create",
                    entity_type="attachment",
                    entity_id=f"att_{n}",
                    organization_id="org_1",
                    project_id=None,
                    user_id="usr_1",
                    data={"id": f"att_{n}"},
                )
            )

        return [await writer.run(functools.partial(record, n=n)) for n in range(count)]
    finally:
        await database.dispose()


def prune(database_url: str, before: str) -> dict[str, object]:
    result = run_cli("activities", "prune", "--before", before, "--database-url", database_url)
    assert result.returncode == 0, result.stderr
    printed: dict[str, object] = json.loads(result.stdout)
    return printed


async def test_prune_prints_what_it_deleted(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'prune.db'}"
    ids = await write_activities(url, 3)
    assert prune(url, "7d") == {"deleted": 0, "prunedThrough": "0"}  # nothing a week old
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).isoformat().replace("+00:00", "Z")
    # The newest activity is always kept: it anchors "an offset beyond the newest".
    assert prune(url, tomorrow) == {"deleted": 2, "prunedThrough": str(ids[1])}
    assert prune(url, tomorrow) == {"deleted": 0, "prunedThrough": str(ids[1])}


def test_prune_on_a_fresh_database(tmp_path: Path) -> None:
    assert prune(f"sqlite:///{tmp_path / 'fresh.db'}", "2000-01-01T00:00:00") == {
        "deleted": 0,
        "prunedThrough": "0",
    }


@pytest.mark.parametrize("before", ["yesterday", "2026-13-01"])
def test_prune_refuses_a_malformed_time(tmp_path: Path, before: str) -> None:
    result = run_cli(
        "activities", "prune", "--before", before, "--database-url", f"sqlite:///{tmp_path / 'x.db'}"
    )
    assert result.returncode == 2
    assert "--before" in result.stderr
    assert "Traceback" not in result.stderr
