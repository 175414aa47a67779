"""Every relative link in every tracked Markdown file resolves: the file exists, and an
``#anchor`` names a heading of it (GitHub's anchor rules). A link that leads outside the
repository (``../shared/...``) is refused too: a clone has nothing there."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: ``[text](target "title")`` and ``![alt](target)``; reference definitions ``[x]: target``.
_INLINE = re.compile(r"!?\[(?:[^\]\\]|\\.)*\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
_REFERENCE = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$", re.MULTILINE)
_FENCE = re.compile(r"^\s{0,3}(```|~~~).*?^\s{0,3}\1\s*$", re.MULTILINE | re.DOTALL)
_CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1", re.DOTALL)
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$", re.MULTILINE)
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def tracked_markdown() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "-z", "*.md"], cwd=ROOT, capture_output=True, check=True
    ).stdout.decode()
    return [ROOT / name for name in listed.split("\0") if name]


def without_code(text: str) -> str:
    return _CODE_SPAN.sub("", _FENCE.sub("", text))


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: markup dropped, lower case, punctuation other than
    ``-`` and ``_`` removed, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    text = re.sub(r"[`*]", "", text).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    found: set[str] = set()
    seen: dict[str, int] = {}
    for heading in _HEADING.findall(_FENCE.sub("", path.read_text())):
        base = slug(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(path: Path) -> list[str]:
    text = without_code(path.read_text())
    return _INLINE.findall(text) + _REFERENCE.findall(text)


def broken_links(path: Path, root: Path = ROOT) -> list[str]:
    problems = []
    for target in links(path):
        if not target or _SCHEME.match(target) or target.startswith("//"):
            continue
        file_part, _, anchor = target.partition("#")
        destination = (path.parent / unquote(file_part)).resolve() if file_part else path
        if root not in (destination, *destination.parents):
            problems.append(f"{target}: leads outside the repository")
        elif not destination.exists():
            problems.append(f"{target}: no such file")
        elif anchor and destination.suffix == ".md" and anchor.lower() not in anchors(destination):
            problems.append(f"{target}: no heading #{anchor} in {destination.relative_to(root)}")
    return problems


@pytest.mark.parametrize("path", tracked_markdown(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(path: Path) -> None:
    assert broken_links(path) == []


def test_the_checker_catches_what_it_should(tmp_path: Path) -> None:
    # The checker itself can fail: a missing file, a missing heading, a path out of the tree.
    assert slug("Metrics a dashboard needs") == "metrics-a-dashboard-needs"
    assert slug("`GET /health` and *ops*") == "get-health-and-ops"
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "api.md").write_text("# API\n\n## Streams\n\n```\n# not a heading\n```\n")
    probe = tmp_path / "docs" / "probe.md"
    probe.write_text(
        "[a](api.md#streams) [b](nope.md) [c](api.md#not-a-heading) [d](../../shared/API.md)\n"
        "`[e](inside-code.md)` [f](https://example.com/x) [g](#here)\n\n## Here\n"
    )
    assert broken_links(probe, root=tmp_path) == [
        "nope.md: no such file",
        "api.md#not-a-heading: no heading #not-a-heading in docs/api.md",
        "../../shared/API.md: leads outside the repository",
    ]
