"""constraints.txt pins every dependency the README's commands install, and this environment matches it.

A range in pyproject.toml that the lock does not pin would let a new release turn a clean clone red; an
installed version that differs from its pin means the suite is not testing what a clone installs.
"""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent


def _pins() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([^\s;]+)", line)
        assert match, f"constraints.txt: not an exact pin: {line!r}"
        pins[canonicalize_name(match[1])] = match[2]
    return pins


def _declared() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        names.extend(extra)
    return [Requirement(name) for name in names]


def test_every_declared_dependency_is_pinned_within_its_range() -> None:
    pins = _pins()
    for requirement in _declared():
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement.name} is in pyproject.toml but not pinned in constraints.txt"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"{requirement.name}=={pins[name]} is outside pyproject.toml's range {requirement.specifier}"
        )


def test_installed_versions_match_the_pins() -> None:
    wrong = []
    for name, pinned in sorted(_pins().items()):
        if name == "pip":  # the installer: a fresh venv brings its own, which .ci/run moves to the pin
            continue
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            installed = "(not installed)"
        if installed != pinned:
            wrong.append(f"{name}: installed {installed}, pinned {pinned}")
    assert not wrong, "install with -c constraints.txt:\n" + "\n".join(wrong)
