"""The command line as a person meets it: clear one-line refusals, passwords kept off the command line,
``login`` and what ``tail`` says about URLs that are not streams."""

from __future__ import annotations

import asyncio
import io
import os
import pty
import select
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from rich.console import Console

from harness import Api, ServerProcess, free_port, unique
from services import require_postgres
from syncstream.client import StreamState
from syncstream.tail import TailStatus

PASSWORD = "correct-horse"
FAILSAFE_SECONDS = 60.0


def cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m syncstream.cli ARGS`` with no terminal on stdin and a controlled environment."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("SYNCSTREAM_")}
    return subprocess.run(
        [sys.executable, "-m", "syncstream.cli", *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=FAILSAFE_SECONDS,
        check=False,
        env={
            **base,
            "SYNCSTREAM_PASSWORD_TIME_COST": "1",
            "SYNCSTREAM_PASSWORD_MEMORY_KIB": "1024",
            **(env or {}),
        },
        cwd=cwd,
    )


def one_clear_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("syncstream: ")
    return lines[0]


# -- serve -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["--database-url", "nonsense://x"], "bad --database-url"),
        (["--database-url", "not a url"], "bad --database-url"),
        (
            ["--database-url", f"postgresql://nobody:secret@127.0.0.1:{free_port()}/x"],
            "cannot reach the database",
        ),
        (["--database-url", "sqlite:////nonexistent-dir/x.db"], "unable to open database file"),
        (["--database-url", "sqlite:///{tmp}/ok.db", "--bus-url", "bogus://"], "bad --bus-url"),
    ],
)
def test_serve_refuses_a_bad_or_unreachable_database_or_bus_in_one_line(
    tmp_path: Path, flags: list[str], expected: str
) -> None:
    flags = [flag.replace("{tmp}", str(tmp_path)) for flag in flags]
    line = one_clear_line(cli("serve", "--port", str(free_port()), *flags))
    assert expected in line
    assert "secret" not in line  # a password in the URL is not printed


async def test_serve_names_a_missing_postgres_database() -> None:
    url = (await require_postgres()).rsplit("/", 1)[0] + f"/{unique('missing')}"
    line = one_clear_line(cli("serve", "--port", str(free_port()), "--database-url", url))
    assert "does not exist" in line


# -- user create -------------------------------------------------------------------------------------


def test_user_create_reads_the_password_from_the_environment(server: ServerProcess) -> None:
    email = f"{unique('env')}@example.test"
    result = cli(
        "user", "create", email, "--database-url", server.database_url, env={"SYNCSTREAM_PASSWORD": PASSWORD}
    )
    assert result.returncode == 0, result.stderr
    assert orjson.loads(result.stdout)["user"]["email"] == email


def test_user_create_without_a_password_or_a_terminal_says_how_to_give_one(server: ServerProcess) -> None:
    line = one_clear_line(cli("user", "create", "x@example.test", "--database-url", server.database_url))
    assert "--password" in line
    assert "SYNCSTREAM_PASSWORD" in line


def test_user_create_refuses_a_sqlite_file_that_does_not_exist(tmp_path: Path) -> None:
    result = cli("user", "create", "x@example.test", "--password", PASSWORD, cwd=tmp_path)
    line = one_clear_line(result)
    assert str(tmp_path / "syncstream.db") in line
    assert "start the server once" in line
    assert "--database-url" in line
    assert not (tmp_path / "syncstream.db").exists()


def test_user_create_refuses_a_database_without_the_schema(tmp_path: Path) -> None:
    (tmp_path / "empty.db").touch()
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    line = one_clear_line(
        cli("user", "create", "x@example.test", "--password", PASSWORD, "--database-url", url)
    )
    assert "no syncstream schema" in line


def run_on_a_terminal(args: list[str], answers: list[str]) -> tuple[int, str]:
    """Run the CLI with a pseudo-terminal as its controlling terminal, answering each ``Password``
    prompt in turn; returns the exit code and everything it wrote to the terminal."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: the pty is its terminal
        env = {k: v for k, v in os.environ.items() if k != "SYNCSTREAM_PASSWORD"}
        env.update({"SYNCSTREAM_PASSWORD_TIME_COST": "1", "SYNCSTREAM_PASSWORD_MEMORY_KIB": "1024"})
        os.execve(sys.executable, [sys.executable, "-m", "syncstream.cli", *args], env)
    output = b""
    pending = list(answers)
    deadline = time.monotonic() + FAILSAFE_SECONDS
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], deadline - time.monotonic())
            if not ready:
                break
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # the child closed the terminal: it has exited
                break
            if not chunk:
                break
            output += chunk
            if pending and output.count(b"Password") > len(answers) - len(pending):
                os.write(fd, pending.pop(0).encode() + b"\n")
    finally:
        if time.monotonic() >= deadline:
            os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    return os.waitstatus_to_exitcode(status), output.decode(errors="replace")


def test_user_create_asks_for_the_password_twice_on_a_terminal(server: ServerProcess) -> None:
    email = f"{unique('tty')}@example.test"
    args = ["user", "create", email, "--database-url", server.database_url]
    code, output = run_on_a_terminal(args, [PASSWORD, PASSWORD])
    assert code == 0, output
    assert "Password (again)" in output
    assert PASSWORD not in output  # not echoed
    assert f'"email":"{email}"' in output

    code, output = run_on_a_terminal(args, [PASSWORD, "something-else"])
    assert code == 2
    assert "the two passwords differ" in output


def first_tail_line(url: str, env: dict[str, str]) -> dict[str, Any]:
    process = subprocess.Popen(
        [sys.executable, "-m", "syncstream.cli", "tail", url, "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, **env},
    )
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], FAILSAFE_SECONDS)
        assert ready, "tail printed nothing"
        line: dict[str, Any] = orjson.loads(process.stdout.readline())
        return line
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(FAILSAFE_SECONDS)


# -- login and tail ----------------------------------------------------------------------------------


async def test_login_stores_a_private_token_that_tail_uses(server: ServerProcess, tmp_path: Path) -> None:
    owner = await Api(server.url).sign_up()
    api = owner.api()
    org = await api.ok("POST", "/organizations", 201, json={"name": "Login", "slug": unique("l")})
    await api.ok("POST", f"/organizations/{org['slug']}/attachments", 201, json={"name": "seen"})
    await api.aclose()
    env = {"XDG_CONFIG_HOME": str(tmp_path), "SYNCSTREAM_PASSWORD": PASSWORD}

    refused = cli(
        "login", server.url, "--email", owner.email, env={**env, "SYNCSTREAM_PASSWORD": "wrong-horse"}
    )
    assert "wrong email or password" in one_clear_line(refused)

    result = cli("login", server.url, "--email", owner.email, env=env)
    assert result.returncode == 0, result.stderr
    path = tmp_path / "syncstream" / "credentials.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    stored = orjson.loads(path.read_bytes())
    assert stored[server.url]["email"] == owner.email

    # tail finds the token by the server's origin.
    url = f"{server.url}/organizations/{org['slug']}/sync/stream"
    first = await asyncio.to_thread(first_tail_line, url, {**env, "SYNCSTREAM_TOKEN": ""})
    assert first["data"]["name"] == "seen"

    result = cli("logout", server.url, env=env)
    assert result.returncode == 0, result.stderr
    assert orjson.loads(path.read_bytes()) == {}
    unauthorized = Api(server.url, stored[server.url]["token"])
    await unauthorized.ok("GET", "/me", 401)  # the session ended on the server too
    await unauthorized.aclose()


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/docs", "is not a stream: it answered with a web page"),
        ("/health", "is not a stream: it answered with a JSON document"),
        ("/nothing/here", "not found (404)"),
    ],
)
def test_tail_says_when_a_url_is_not_a_stream(server: ServerProcess, path: str, expected: str) -> None:
    result = cli("tail", server.url + path, "--json")
    assert result.returncode == 1
    assert expected in result.stderr
    assert "Traceback" not in result.stderr


def test_tail_gives_up_after_max_retries() -> None:
    result = cli("tail", f"http://127.0.0.1:{free_port()}/pages/stream", "--json", "--max-retries", "2")
    assert result.returncode == 1
    assert "gave up after 3 consecutive failed attempts" in result.stderr


def test_the_status_line_fits_the_terminal() -> None:
    status = TailStatus("http://127.0.0.1:8000/organizations/a-long-organization-slug/sync/stream")
    status.state, status.cursor = StreamState.RECONNECTING, "123456"
    status.detail = "retry in 0.3s: ConnectError: All connection attempts failed"
    for width in (30, 60, 100):
        out = io.StringIO()
        Console(file=out, width=width, force_terminal=True, color_system=None).print(status)
        lines = out.getvalue().rstrip("\n").split("\n")
        assert len(lines) == 1
        assert len(lines[0]) <= width
        assert lines[0].startswith("● reconnecting")
