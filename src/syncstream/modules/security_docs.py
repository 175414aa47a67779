"""Say in the OpenAPI document which operations need a caller, and how to be one.

Without ``securitySchemes`` and a ``security`` list on exactly the operations that answer
401 without credentials, schema-driven clients and fuzzers cannot tell a public
operation from a private one. FastAPI derives both from security-scheme dependencies,
but those run on every request; here they are derived once, from the routes that
depend on :func:`~syncstream.modules.common.current_caller`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from syncstream.auth.sessions import SESSION_COOKIE
from syncstream.modules.common import current_caller

SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    "HTTPBearer": {"type": "http", "scheme": "bearer", "description": "`Authorization: Bearer <token>`"},
    "APIKeyCookie": {
        "type": "apiKey",
        "in": "cookie",
        "name": SESSION_COOKIE,
        "description": "The session cookie set by `POST /auth/sign-in`.",
    },
}
#: Either one will do.
SECURITY: list[dict[str, list[str]]] = [{"HTTPBearer": []}, {"APIKeyCookie": []}]


def _depends_on(dependant: Dependant, call: Callable[..., Any]) -> bool:
    return any(sub.call is call or _depends_on(sub, call) for sub in dependant.dependencies)


def document_security(app: FastAPI, schema: dict[str, Any]) -> dict[str, Any]:
    schema.setdefault("components", {}).setdefault("securitySchemes", {}).update(SECURITY_SCHEMES)
    paths = schema.get("paths", {})
    for route in app.routes:
        if (
            isinstance(route, APIRoute)
            and route.include_in_schema
            and _depends_on(route.dependant, current_caller)
        ):
            for method in route.methods or ():
                operation = paths.get(route.path_format, {}).get(method.lower())
                if operation is not None:
                    operation["security"] = SECURITY
    return schema


def install_security_docs(app: FastAPI) -> None:
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None or "securitySchemes" not in app.openapi_schema.get("components", {}):
            app.openapi_schema = document_security(app, generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
