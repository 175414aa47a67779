"""The browser client's package: its TypeScript declarations compile under ``--strict`` and type the
documented uses, its module loads in Node, and ``npm pack`` ships exactly the client."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from services import REQUIRE_VARIABLE, services_required

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "syncstream" / "browser" / "js"
USAGE = Path(__file__).parent / "typescript" / "usage.ts"


def tool(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        reason = f"{name} not found (apt-get install {package})"
        if services_required():
            pytest.fail(f"{reason} and {REQUIRE_VARIABLE}=1", pytrace=False)
        pytest.skip(reason)
    return path


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def test_declarations_type_the_documented_uses_under_strict() -> None:
    tsc = tool("tsc", "node-typescript")
    result = run(
        tsc,
        "--noEmit",
        "--strict",
        "--target",
        "es2022",
        "--lib",
        "es2022,dom,dom.iterable",
        "--module",
        "es2022",
        "--moduleResolution",
        "node",
        USAGE.name,
        cwd=USAGE.parent,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_module_exports_what_its_declarations_declare() -> None:
    node = tool("node", "nodejs")
    script = "import('./client.js').then((m) => console.log(JSON.stringify(Object.keys(m).sort())))"
    result = run(node, "-e", script, cwd=PACKAGE)
    assert result.returncode == 0, result.stderr
    declared = (PACKAGE / "client.d.ts").read_text()
    exported = json.loads(result.stdout)
    assert exported == sorted(
        ["LiveCollection", "SSEParser", "SyncStream", "SyncStreamError", "compareIds", "randomId"]
    )
    for name in exported:
        assert f"export class {name}" in declared or f"export function {name}" in declared, name


def test_npm_pack_ships_the_client_and_its_types() -> None:
    npm = tool("npm", "npm")
    result = run(npm, "pack", "--dry-run", "--json", cwd=PACKAGE)
    assert result.returncode == 0, result.stderr
    packed = json.loads(result.stdout)[0]
    assert sorted(f["path"] for f in packed["files"]) == ["client.d.ts", "client.js", "package.json"]
    manifest = json.loads((PACKAGE / "package.json").read_text())
    assert manifest["type"] == "module"
    assert manifest["exports"]["."] == {"types": "./client.d.ts", "default": "./client.js"}
    assert not manifest.get("dependencies"), "the client has no runtime dependencies"
