"""The README's curl tour runs as printed: its code block, taken from README.md, runs in bash
against a real server (the tour's ``B`` pointed at it), and what it prints is what the tour says."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness import TEST_ENV, ServerProcess
from services import REQUIRE_VARIABLE, services_required

README = Path(__file__).resolve().parent.parent / "README.md"
TOUR_HEADING = "## A tour with curl"


def tour_script() -> str:
    """The first ``sh`` block under the tour's heading, exactly as printed."""
    text = README.read_text()
    section = text[text.index(TOUR_HEADING) :]
    found = re.search(r"^```sh\n(.*?)^```$", section, re.MULTILINE | re.DOTALL)
    assert found, "the tour has no sh block"
    return found.group(1)


@pytest.fixture
def tools() -> None:
    missing = [tool for tool in ("curl", "jq", "bash") if shutil.which(tool) is None]
    if missing:
        reason = f"the README tour needs {', '.join(missing)} (apt-get install -y {' '.join(missing)})"
        if services_required():
            pytest.fail(f"{reason} and {REQUIRE_VARIABLE}=1", pytrace=False)
        pytest.skip(reason)


@pytest.fixture
def tour_server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A fresh server whose SQLite file is ``./syncstream.db`` of the folder the tour runs in,
    as for a reader who runs ``syncstream serve`` and the tour in one folder."""
    server = ServerProcess(database_url=f"sqlite:///{tmp_path / 'syncstream.db'}").start()
    yield server
    server.stop()


def test_the_readme_tour_runs_as_printed(tools: None, tour_server: ServerProcess, tmp_path: Path) -> None:
    bin_dir = str(Path(sys.executable).parent)  # where ``syncstream`` is installed
    env = {**os.environ, **TEST_ENV, "B": tour_server.url, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    env.pop("SYNCSTREAM_DATABASE_URL", None)
    result = subprocess.run(
        ["bash", "-o", "pipefail", "-c", tour_script()],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    out = result.stdout
    assert result.returncode == 0, (result.returncode, out, result.stderr)
    # (Not "stderr is empty": a CLI may rightly warn there, e.g. about a password on the command line.)
    for failure in ("jq: error", "parse error", "Traceback", "command not found"):
        assert failure not in result.stderr, result.stderr
    lines = out.splitlines()

    def json_line(predicate: str) -> dict[str, object]:
        for line in lines:
            if line.startswith("{") and predicate in line:
                parsed: dict[str, object] = json.loads(line)
                return parsed
        raise AssertionError(f"no JSON line with {predicate!r} in:\n{out}")

    # The org, its project, the attachment.
    assert json_line('"slug":"acme"')["name"] == "Acme"
    assert json_line('"name":"Launch"')["organizationId"]
    assert json_line('"name":"plan.pdf"')["organizationId"]
    # The followed stream: retry hint, the change (its writer's tx echoed) exactly once, the offset frame.
    changes = [json.loads(line[len("data: ") :]) for line in lines if line.startswith('data: {"activityId"')]
    attachments = [c for c in changes if c["entityType"] == "attachment"]
    assert len(attachments) == 1, out
    assert attachments[0]["data"]["name"] == "plan.pdf"
    assert attachments[0]["tx"]["transactionId"] == "t-1"
    assert out.count("event: offset") == 2  # the org stream's, then the pages stream's
    assert "retry: " in out
    # The JSON page.
    page = json_line('"hasMore"')
    assert (page["hasMore"], page["n"]) == (False, 1)
    assert page["cursor"] == attachments[0]["activityId"]
    # Bob: a member, then an admin, removed (204), and then the org is a 404 to him.
    assert json_line('{"name":"Acme"}') == {"name": "Acme"}
    assert json_line('"role":"admin"')["role"] == "admin"
    assert "204" in lines
    assert json_line('"status":404') == {"status": 404, "type": "not_found"}
    # Pages: the admin's page, and the pages stream that shows it.
    assert json_line('"title":"Welcome"')["id"]
    pages = [c for c in changes if c["entityType"] == "page"]
    assert [p["data"]["title"] for p in pages] == ["Welcome"]
    # Health and metrics.
    assert json_line('"database"')["status"] == "ok"
    assert any(line.startswith("syncstream_activities_routed_total ") for line in lines)
    assert any(line.startswith("syncstream_subscribers ") for line in lines)


def test_the_tour_block_is_found_and_uses_no_fixed_server() -> None:
    script = tour_script()
    assert script.startswith("B=${B:-http://127.0.0.1:8000}")
    assert "--database-url sqlite:///syncstream.db" in script  # user create reaches the server's database
