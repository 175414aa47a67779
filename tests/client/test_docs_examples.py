"""The Python examples of docs/clients.md marked "runs in tests", run as written against a real server
(only the server URL, the account and the organization's slug are swapped for the test's own)."""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

import pytest

from client.support import FAILSAFE_SECONDS, Org

MARKER = "<!-- runs in tests/client/test_docs_examples.py -->"
DOC = Path(__file__).parents[2] / "docs" / "clients.md"


def examples() -> list[str]:
    text = DOC.read_text()
    found = re.findall(re.escape(MARKER) + r"\n```python\n(.*?)```", text, flags=re.DOTALL)
    assert len(found) == text.count(MARKER), "every marked example is a python block right below its marker"
    return found


def adapted(code: str, org: Org) -> str:
    return (
        code.replace("http://127.0.0.1:8000", org.server_url)
        .replace("ada@example.com", org.owner.email)
        .replace('"acme"', f'"{org.slug}"')
        .replace("organizations/acme/", f"organizations/{org.slug}/")
    )


def test_the_examples_are_found() -> None:
    assert len(examples()) == 2


@pytest.mark.parametrize("index", [0, 1])
async def test_the_example_runs(org: Org, index: int) -> None:
    code = adapted(examples()[index], org)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    # A fresh interpreter importing the client, on a busy machine: more than the usual failsafe.
    stdout, stderr = await asyncio.wait_for(process.communicate(), 3 * FAILSAFE_SECONDS)
    output = stdout.decode()
    assert process.returncode == 0, f"stdout:\n{output}\nstderr:\n{stderr.decode()}"
    if index == 0:
        assert "create att_" in output, output
        assert "by me" in output, output
        assert "plan-v2.pdf" in output, output
        assert output.rstrip().endswith("1 attachments"), output
    else:
        assert "'notes.txt'" in output, output
        assert " create att_" in output, output
