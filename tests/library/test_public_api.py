"""The public surface is curated: pinned names, all importable and documented; the example and the
docs import nothing from a private module."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import syncstream

ROOT = Path(__file__).resolve().parents[2]

PUBLIC = {
    "Access",
    "AccessIndex",
    "Activity",
    "Caller",
    "CallerDep",
    "EntityType",
    "Grant",
    "MemberSubscriber",
    "NewActivity",
    "Permission",
    "Problem",
    "PublicSubscriber",
    "ReadScope",
    "Scope",
    "Settings",
    "SliceSubscriber",
    "StreamPaths",
    "StreamSlice",
    "Syncstream",
    "UnrecordedWriteError",
    "WriteTransaction",
    "apply_membership_change",
    "current_caller",
    "end_organization_streams",
    "end_session_streams",
    "entity_type",
    "in_organization",
    "in_project",
    "is_member",
    "is_org_admin",
    "load_memberships",
    "open_slice",
    "public",
    "read_after",
    "read_scope",
    "route",
}


def test_the_public_names_are_pinned_and_resolve() -> None:
    assert set(syncstream.__all__) == PUBLIC
    for name in PUBLIC:
        value = getattr(syncstream, name)
        assert getattr(value, "__doc__", None) or name in {"CallerDep", "Permission"}, name


def test_importing_the_client_does_not_load_the_server() -> None:
    code = "import sys, syncstream.client; print('fastapi' in sys.modules or 'sqlalchemy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("syncstream"):
            found += [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.startswith("syncstream")]
    return found


def test_the_example_uses_only_the_public_package() -> None:
    for path in (ROOT / "examples").rglob("*.py"):
        for name in imports(path):
            module, _, attr = name.rpartition(".")
            assert module == "syncstream", f"{path.name} imports {name}"
            assert attr in PUBLIC, f"{path.name} imports {name}"


def test_no_module_imports_another_modules_private_names() -> None:
    for path in (ROOT / "src" / "syncstream").rglob("*.py"):
        for name in imports(path):
            assert not name.rpartition(".")[2].startswith("_"), f"{path} imports {name}"


def test_the_core_rules_and_the_activity_model_name_no_entity_type() -> None:
    for relative in ("permissions.py", "activities/model.py", "activities/bus.py", "activities/log.py"):
        source = (ROOT / "src" / "syncstream" / relative).read_text()
        named = re.search(
            r"attachment|[\"']page[\"']|\bpage\.(created|updated|deleted)|PUBLIC_TYPES|ORG_SCOPED_TYPES",
            source,
            re.I,
        )
        assert named is None, (relative, named)


def test_the_package_says_it_is_typed() -> None:
    assert (ROOT / "src" / "syncstream" / "py.typed").exists()  # PEP 561: type checkers read our hints
