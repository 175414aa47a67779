"""Turn every error into an RFC 9457 problem, and cap request bodies.

FastAPI's defaults answer 422 and 404 in their own shapes and an unhandled exception
with a bare 500; a client of this API sees ``application/problem+json`` for all of them,
and never a stack trace.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.routing import Match

from syncstream.problems import Problem, problem_response

logger = logging.getLogger("syncstream.errors")

_STATUS_TYPES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    431: "request_header_fields_too_large",
    422: "validation_error",
    429: "too_many_requests",
    503: "unavailable",
}


def _validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    errors = []
    for error in exc.errors()[:50]:
        loc = [str(part) for part in error.get("loc", ())]
        errors.append({"loc": loc, "msg": str(error.get("msg", "")), "type": str(error.get("type", ""))})
    return errors


async def _on_problem(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, Problem)
    return exc.to_response()


def _is_json(content_type: str) -> bool:
    media_type = content_type.partition(";")[0].strip().lower()
    return media_type == "application/json" or media_type.endswith("+json")


def _is_parameter_error(errors: list[dict[str, Any]]) -> bool:
    """Only path or query parameters are wrong: a 400, not a body's 422."""
    places = {e["loc"][0] if e["loc"] else "" for e in errors}
    return bool(places) and places <= {"query", "path"}


async def _on_validation(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = _validation_errors(exc)
    where = "; ".join(f"{'.'.join(e['loc'])}: {e['msg']}" for e in errors[:5])
    if _is_parameter_error(errors):
        return problem_response(400, "bad_request", f"malformed parameter: {where}", errors=errors)
    content_type = request.headers.get("content-type", "")
    if not _is_json(content_type) and (content_type or exc.body):
        # FastAPI reads only JSON-typed bodies; without this, a client that forgot the
        # header would be told its (perhaps perfect) JSON is "not a valid dictionary".
        # (No Content-Type and no body at all is a missing body: the 422 below.)
        given = content_type.partition(";")[0].strip() or "none"
        detail = f"the body must be JSON, sent with Content-Type: application/json (not {given})"
        return problem_response(415, "unsupported_media_type", detail)
    syntax = _json_syntax_error(exc)
    if syntax is not None:
        return problem_response(422, "validation_error", syntax, errors=[{**errors[0], "loc": ["body"]}])
    return problem_response(422, "validation_error", f"the body is invalid: {where}", errors=errors)


def _json_syntax_error(exc: RequestValidationError) -> str | None:
    """ "Invalid JSON at line 1, column 10: expecting value" for a body that does not parse,
    instead of FastAPI's location ``body.9`` (a character offset nobody counts by hand)."""
    first = exc.errors()[0] if exc.errors() else {}
    if first.get("type") != "json_invalid" or not isinstance(exc.body, str):
        return None
    loc = first.get("loc", ())
    position = loc[1] if len(loc) > 1 and isinstance(loc[1], int) else 0
    line = exc.body.count("\n", 0, position) + 1
    column = position - exc.body.rfind("\n", 0, position)
    reason = str(first.get("ctx", {}).get("error", "not JSON"))
    return f"Invalid JSON at line {line}, column {column}: {reason[:1].lower()}{reason[1:]}"


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _allowed_methods(request: Request) -> str:
    """Every method the path supports, for ``Allow`` (RFC 9110 §15.5.6).

    The router names only the methods of the first route whose path matched, so
    ``PUT /pages`` would advertise POST but not GET. Asking the routes whether each
    method would match fully works whatever the router's internal nesting.

    A literal path is its own resource, though: ``/pages/stream`` is the stream (GET
    only), not the page ``{page_id}="stream"``. So where the OpenAPI document describes
    the path, ``Allow`` lists what it documents, literal paths first, as the router
    matches them (the fuzzer in tests/hardening found ``OPTIONS /pages/stream``
    advertising PATCH and DELETE).
    """
    documented = _documented_methods(request)
    if documented:
        return ", ".join(m for m in _METHODS if m in documented)
    allowed = [
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] == Match.FULL
            for route in request.app.router.routes
        )
    ]
    return ", ".join(allowed)


def _documented_methods(request: Request) -> set[str]:
    """The methods the OpenAPI document gives the request's path (empty if none)."""
    path: str = request.scope["path"]
    paths: dict[str, dict[str, Any]] = request.app.openapi().get("paths", {})
    matching = [template for template in paths if _template_matches(template, path)]
    literal = [template for template in matching if "{" not in template]
    methods: set[str] = set()
    for template in literal or matching:
        methods.update(method.upper() for method in paths[template])
    return methods


def _template_matches(template: str, path: str) -> bool:
    parts, wanted = template.strip("/").split("/"), path.strip("/").split("/")
    if len(parts) != len(wanted):
        return False
    return all(
        (p[:1] == "{" and p[-1:] == "}" and w != "") or p == w for p, w in zip(parts, wanted, strict=True)
    )


def _unreadable_body(exc: HTTPException) -> str | None:
    """What is wrong with a JSON body that FastAPI could not decode for a reason other than
    its syntax, or None.

    FastAPI answers a syntax error with a validation error, but a body nested deeper than
    the parser goes (``[[[[…]]]]``, RecursionError) or not in UTF-8 (UnicodeDecodeError)
    becomes a bare ``400 "There was an error parsing the body"``: a malformed body is a
    ``422 validation_error`` here (architecture.md), whatever the malformation, and says
    what it is. (tests/hardening/test_hostile_input.py found the 400s.)
    """
    cause = exc.__cause__
    if exc.status_code != 400 or cause is None:
        return None
    if isinstance(cause, RecursionError):
        return "the body is not valid JSON: it is nested too deeply"
    if isinstance(cause, UnicodeError):
        return "the body is not valid JSON: it is not UTF-8 text"
    if isinstance(cause, ValueError):
        return "the body is not valid JSON"
    return None


async def _on_http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if (unreadable := _unreadable_body(exc)) is not None:
        return problem_response(422, "validation_error", unreadable)
    type_ = _STATUS_TYPES.get(exc.status_code, "bad_request" if exc.status_code < 500 else "internal_error")
    detail = exc.detail if isinstance(exc.detail, str) else type_
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = _allowed_methods(request) or headers.get("Allow", "")
    return problem_response(exc.status_code, type_, detail, headers=headers)


async def _on_database_down(_: Request, exc: Exception) -> Response:
    logger.warning("database unavailable: %s", type(exc).__name__)
    return problem_response(
        503, "unavailable", "The database is unavailable; retry shortly.", headers={"Retry-After": "5"}
    )


async def _on_unexpected(_: Request, exc: Exception) -> Response:
    logger.exception("unhandled error", exc_info=exc)
    return problem_response(500, "internal_error", "An unexpected error occurred; it has been logged.")


#: SQLSTATE classes that mean "the database cannot serve now", not "this request is
#: wrong": connection exceptions (08), insufficient resources such as "too many
#: clients" (53), operator intervention such as a shutdown (57).
_UNAVAILABLE_SQLSTATE_CLASSES = ("08", "53", "57")


def _is_disconnect(exc: DBAPIError) -> bool:
    sqlstate = getattr(exc.orig, "sqlstate", None)
    return (
        bool(exc.connection_invalidated)
        or isinstance(exc, OperationalError)
        or (isinstance(sqlstate, str) and sqlstate.startswith(_UNAVAILABLE_SQLSTATE_CLASSES))
    )


def _is_data_error(exc: DBAPIError) -> bool:
    """SQLSTATE class 22, "data exception"; SQLAlchemy's asyncpg adapter does not map
    it to :class:`DataError`, so the SQLSTATE is what tells."""
    sqlstate = getattr(exc.orig, "sqlstate", None)
    return isinstance(exc, DataError) or (isinstance(sqlstate, str) and sqlstate.startswith("22"))


def _has_nul_parameter(request: Request) -> bool:
    path: str = request.scope["path"]
    return "\x00" in path or any("\x00" in k + v for k, v in request.query_params.multi_items())


async def _on_unstorable(request: Request, exc: DBAPIError) -> Response:
    """A value the database refuses (PostgreSQL takes no NUL character in text).

    Only a client's input reaches the database as a value, so this is the client's
    error, never a 500: a path or query parameter is malformed (400), else the body (422).
    """
    logger.info("database refused a value: %s", type(exc.orig).__name__)
    if _has_nul_parameter(request):
        return problem_response(400, "bad_request", "a path or query parameter holds a NUL character")
    return problem_response(422, "validation_error", "the body holds a value that cannot be stored")


async def _on_integrity(_: Request, exc: IntegrityError) -> Response:
    """A constraint broke because the change raced another one (e.g. the project it
    names was just deleted): the state changed under the request, which is a conflict."""
    logger.warning("write conflicted with a concurrent change: %s", type(exc.orig).__name__)
    return problem_response(409, "conflict", "the change conflicts with a concurrent change; retry it")


async def _on_dbapi(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DBAPIError)
    if _is_disconnect(exc):
        return await _on_database_down(request, exc)
    if _is_data_error(exc):
        return await _on_unstorable(request, exc)
    if isinstance(exc, IntegrityError):
        return await _on_integrity(request, exc)
    return await _on_unexpected(request, exc)


PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "An RFC 9457 problem; `type` is one of the contract's snake_case codes.",
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "instance": {
            "type": "string",
            "description": "`urn:request:` and the request's ID, as echoed in `X-Request-ID`.",
        },
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "loc": {"type": "array", "items": {"type": "string"}},
                    "msg": {"type": "string"},
                    "type": {"type": "string"},
                },
            },
        },
    },
}


def _problem_response(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


def document_problems(schema: dict[str, Any]) -> dict[str, Any]:
    """Make the generated OpenAPI document tell the truth about errors.

    FastAPI documents a 422 whose body is its own ``HTTPValidationError`` (``detail`` a
    list, ``application/json``) and no other error; this API answers every error, 422
    included, with an ``application/problem+json`` problem. Schema-driven clients and
    fuzzers (tests/hardening) read the document, so each operation's 422 is replaced by
    the problem, and ``4XX`` and ``5XX`` problem responses cover the other error statuses.
    """
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["Problem"] = PROBLEM_SCHEMA
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    for path_item in schema.get("paths", {}).values():
        for operation in path_item.values():
            responses = operation.setdefault("responses", {})
            if "422" in responses:
                responses["422"] = _problem_response("The body is invalid (`validation_error`).")
            responses.setdefault("4XX", _problem_response("A client error, as an RFC 9457 problem."))
            responses.setdefault("5XX", _problem_response("A server error (`unavailable`), as a problem."))
    return schema


def _install_openapi(app: FastAPI) -> None:
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_problems(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def install_error_handlers(app: FastAPI) -> None:
    _install_openapi(app)
    app.add_exception_handler(Problem, _on_problem)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(HTTPException, _on_http)
    app.add_exception_handler(DBAPIError, _on_dbapi)
    app.add_exception_handler(PoolTimeoutError, _on_database_down)
    app.add_exception_handler(ConnectionError, _on_database_down)
    app.add_exception_handler(Exception, _on_unexpected)
