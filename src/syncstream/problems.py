"""RFC 9457 problem details: the one shape every error of the API takes.

Kept free of any framework import beyond Starlette's response so that every layer
(auth, modules, streams) can raise a :class:`Problem` without importing the app.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

from syncstream.logs import request_id

PROBLEM_CONTENT_TYPE = "application/problem+json"

TITLES: dict[str, str] = {
    "bad_request": "Bad request",
    "unauthorized": "Unauthorized",
    "forbidden": "Forbidden",
    "not_found": "Not found",
    "method_not_allowed": "Method not allowed",
    "conflict": "Conflict",
    "must_refetch": "Must refetch",
    "payload_too_large": "Payload too large",
    "unsupported_media_type": "Unsupported media type",
    "validation_error": "Validation error",
    "too_many_requests": "Too many requests",
    "internal_error": "Internal server error",
    "unavailable": "Service unavailable",
    "slow_consumer": "Slow consumer",
}


class Problem(Exception):
    """An error a client can act on; rendered as ``application/problem+json``."""

    def __init__(
        self,
        status: int,
        type_: str,
        detail: str,
        *,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.type = type_
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra or {}

    def body(self) -> dict[str, Any]:
        return problem_body(self.status, self.type, self.detail, **self.extra)

    def to_response(self) -> Response:
        return problem_response(self.status, self.type, self.detail, headers=self.headers, **self.extra)


#: ``instance`` of a problem: the request's ID (the ``X-Request-ID`` it was answered with)
#: as a URI, so that a problem a user reports leads to the server's log lines of it.
INSTANCE_PREFIX = "urn:request:"


def problem_body(status: int, type_: str, detail: str, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": type_,
        "title": TITLES.get(type_, type_.replace("_", " ").capitalize()),
        "status": status,
        "detail": detail,
    }
    rid = request_id.get()
    if rid != "-":  # outside any request (a problem built at start-up or in a test)
        body["instance"] = INSTANCE_PREFIX + rid
    body.update(extra)
    return body


def problem_response(
    status: int, type_: str, detail: str, *, headers: dict[str, str] | None = None, **extra: Any
) -> Response:
    return Response(
        orjson.dumps(problem_body(status, type_, detail, **extra)),
        status_code=status,
        media_type=PROBLEM_CONTENT_TYPE,
        headers=headers,
    )


def bad_request(detail: str) -> Problem:
    return Problem(400, "bad_request", detail)


def unauthorized(detail: str = "Missing, invalid or signed-out credentials.") -> Problem:
    """401 for a request that brought no credentials: ``WWW-Authenticate: Bearer``."""
    return Problem(401, "unauthorized", detail, headers={"WWW-Authenticate": "Bearer"})


def invalid_token(detail: str = "The token is invalid, expired or signed out.") -> Problem:
    """401 for credentials that were given but are no good (RFC 6750 §3.1): the client
    learns that signing in again, not adding a header, is what helps."""
    challenge = 'Bearer error="invalid_token", error_description="' + detail.replace('"', "'") + '"'
    return Problem(401, "unauthorized", detail, headers={"WWW-Authenticate": challenge})


def forbidden(detail: str = "This action is not allowed.") -> Problem:
    return Problem(403, "forbidden", detail)


def not_found(detail: str = "Not found.") -> Problem:
    return Problem(404, "not_found", detail)


def conflict(detail: str) -> Problem:
    return Problem(409, "conflict", detail)


def must_refetch(detail: str) -> Problem:
    return Problem(409, "must_refetch", detail)


def unavailable(detail: str, retry_after: int = 5) -> Problem:
    return Problem(503, "unavailable", detail, headers={"Retry-After": str(retry_after)})


def too_many_requests(detail: str, retry_after: int) -> Problem:
    return Problem(429, "too_many_requests", detail, headers={"Retry-After": str(retry_after)})
