"""How the application is put together."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import APIRouter, FastAPI

from syncstream import app as app_module
from syncstream.app import create_app

PUBLIC = {
    ("post", "/auth/sign-up"),
    ("post", "/auth/sign-in"),
    ("get", "/health"),
    ("get", "/metrics"),
    ("get", "/pages"),
    ("get", "/pages/{page_id}"),
    ("get", "/pages/stream"),
}


def operations(schema: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(method, path): op for path, ops in schema["paths"].items() for method, op in ops.items()}


def test_mounted_routes_describe_the_same_api_as_included_routers(monkeypatch: pytest.MonkeyPatch) -> None:
    """The app takes the modules' routes over instead of including their routers (it is
    faster per request); the OpenAPI document must not notice."""
    mounted = create_app().openapi()

    def include(app: FastAPI, router: APIRouter) -> None:
        app.include_router(router)

    monkeypatch.setattr(app_module, "mount", include)
    included = create_app().openapi()
    for schema in (mounted, included):  # security is the next test's business
        for op in operations(schema).values():
            op.pop("security", None)
    assert mounted == included
    assert len(mounted["paths"]) >= 15


def test_every_operation_but_the_public_ones_says_it_needs_a_caller() -> None:
    schema = create_app().openapi()
    schemes = schema["components"]["securitySchemes"]
    assert schemes["HTTPBearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "`Authorization: Bearer <token>`",
    }
    assert schemes["APIKeyCookie"]["in"] == "cookie"
    ops = operations(schema)
    assert set(ops) >= PUBLIC
    for key, op in ops.items():
        if key in PUBLIC:
            assert "security" not in op, key
        else:
            assert op["security"] == [{"HTTPBearer": []}, {"APIKeyCookie": []}], key
