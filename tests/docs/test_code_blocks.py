"""Every code block of the library docs runs in a test.

A block is either a file of the example application, or a marked region of one
(``<!-- include: path#region -->``; the example's own tests run that code), or a command
this test runs (``<!-- run: ... -->``). A block that is neither fails here.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from harness import STARTUP_SECONDS, TEST_ENV, free_port

ROOT = Path(__file__).resolve().parents[2]
DOCS = ["docs/library.md", "docs/streams.md"]
FENCE = re.compile(r"^[ \t]*```(\w*)\n(.*?)^[ \t]*```\n", re.S | re.M)
MARKER = re.compile(r"<!-- (include|run): (\S+) -->\s*$")


def blocks(doc: str) -> list[tuple[str, str, str]]:
    """(marker kind, marker argument, block text) for every fenced block of ``doc``."""
    text = (ROOT / doc).read_text()
    found = []
    for match in FENCE.finditer(text):
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        marker = MARKER.search(before)
        kind, argument = marker.groups() if marker else ("", "")
        found.append((kind, argument, match.group(2)))
    return found


def region(path: str) -> str:
    file, _, name = path.partition("#")
    lines = (ROOT / file).read_text().splitlines(keepends=True)
    if not name:
        return "".join(lines)
    start = next(i for i, line in enumerate(lines) if line.strip() == f"# --8<-- [start:{name}]")
    end = next(i for i, line in enumerate(lines) if line.strip() == f"# --8<-- [end:{name}]")
    return "".join(lines[start + 1 : end]).rstrip("\n") + "\n"


ALL = [(doc, kind, arg, body) for doc in DOCS for kind, arg, body in blocks(doc)]


@pytest.mark.parametrize(("doc", "kind", "argument", "body"), ALL, ids=[f"{d}:{a}" for d, _, a, _ in ALL])
def test_every_block_is_run_by_a_test(doc: str, kind: str, argument: str, body: str, tmp_path: Path) -> None:
    assert kind in {"include", "run"}, f"{doc}: a code block that no test runs:\n{body}"
    if kind == "include":
        assert body == region(argument), f"{doc} differs from {argument}"
    else:
        assert argument in RUNNERS, argument
        RUNNERS[argument](body, tmp_path)


def run_tasks_server(command: str, cwd: Path) -> None:
    """The documented command starts the example: it answers, then stops on SIGTERM."""
    *assignments, program, app = shlex.split(command)
    assert program == "uvicorn"
    env = {**os.environ, **TEST_ENV, **dict(a.split("=", 1) for a in assignments)}
    env["PYTHONPATH"] = str(ROOT)
    port = free_port()
    uvicorn = str(Path(sys.executable).parent / "uvicorn")
    process = subprocess.Popen(
        [uvicorn, app, "--host", "127.0.0.1", "--port", str(port)],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            assert process.poll() is None, "the documented command exited"
            assert time.monotonic() < deadline, "the documented command did not start"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/openapi.json", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.05)  # polling a process we do not control: there is no event to await
        paths = httpx.get(f"http://127.0.0.1:{port}/openapi.json").json()["paths"]
        assert "/organizations/{org}/projects/{project_id}/stream" in paths
    finally:
        process.terminate()
        process.wait(timeout=20)


RUNNERS = {"tasks-server": run_tasks_server}
