"""Hot routes: the busiest writes answered without the framework's per-request work.

A create through FastAPI spent about half of its server CPU in the framework: routing
through every route, its middleware layers, solving dependencies, reading the body. A
hot route serves the same operation -- the route's own function, its own request model
-- on the common path only: a JSON body that its model accepts, with credentials.
Everything else (another content type, a body its model refuses, one without a
``Content-Length``, an oversized head) is handed to the framework untouched, body
included, which answers it exactly as it always did. The OpenAPI document, validation
errors and every other problem therefore stay the framework's; an error raised by the
operation itself (401, 403, 404, a database down) goes through the app's own exception
handlers, as it would have there.

It runs inside the request-ID and HTTP-metrics middleware (the request is counted
under the route's template, as the router would have named it), outside the
framework's stack.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import FastAPI
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError
from starlette._utils import get_route_path
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from syncstream.auth.sessions import Caller
from syncstream.modules.common import bearer_token, caller_of
from syncstream.request_limits import MAX_HEADER_BYTES, MAX_HEADER_COUNT
from syncstream.runtime import Runtime

__all__ = ["HotRoute", "HotRoutes", "HotStream", "StreamOpener"]

Handler = Callable[[Runtime, Caller, dict[str, str], Any], Awaitable[Response]]

#: The content types served here; FastAPI reads any ``application/*+json`` too, but those
#: are rare enough to take the framework's path.
_JSON = frozenset({b"application/json", b"application/json; charset=utf-8"})


@dataclass(frozen=True, slots=True)
class HotRoute:
    """One operation of the app served on the hot path: the FastAPI route with this
    ``method`` and ``path`` (its template), its body ``model``, and ``handle`` -- the work
    the route's endpoint does, given the caller, the path parameters and the body."""

    method: str
    path: str
    model: type[BaseModel]
    handle: Handler


#: ``open(request, caller, path_params)``: a stream route's work once its caller is known.
StreamOpener = Callable[[Request, Caller, dict[str, str]], Awaitable[Response]]


@dataclass(frozen=True, slots=True)
class HotStream:
    """A stream route served on the hot path: ``GET path`` whose endpoint takes only its
    path parameters and the caller (the organization stream, a project stream), ``open``
    doing the rest. After a restart every client reopens its stream at once: the
    framework's routing and dependency solving were a fifth of each open's CPU."""

    path: str
    open: StreamOpener
    method: str = "GET"


@dataclass(frozen=True, slots=True)
class _Compiled:
    hot: HotRoute | HotStream
    route: APIRoute


class HotRoutes:
    """ASGI middleware in front of the framework's stack (``app``) of ``fastapi``."""

    def __init__(
        self, app: ASGIApp, fastapi: FastAPI, routes: Sequence[HotRoute | HotStream], max_body: int
    ) -> None:
        self.app = app
        self.fastapi = fastapi
        self.max_body = max_body
        self.routes: dict[str, list[_Compiled]] = {}
        for hot in routes:
            route = _find(fastapi, hot)
            self.routes.setdefault(hot.method, []).append(_Compiled(hot, route))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (candidates := self.routes.get(scope["method"])):
            path = get_route_path(scope)
            for compiled in candidates:
                match = compiled.route.path_regex.match(path)
                if match is not None:
                    await self._serve(compiled, match.groupdict(), scope, receive, send)
                    return
        await self.app(scope, receive, send)

    async def _serve(
        self, compiled: _Compiled, params: dict[str, str], scope: Scope, receive: Receive, send: Send
    ) -> None:
        hot = compiled.hot
        if self.fastapi.dependency_overrides or not (
            _bodiless(scope) if isinstance(hot, HotStream) else self._plain(scope)
        ):
            await self.app(scope, receive, send)
            return
        model = None
        if isinstance(hot, HotRoute):
            messages, body = await _read(receive, self.max_body)
            model = _validated(hot.model, body) if body is not None else None
            if model is None:  # the framework answers it, as if nothing had happened here
                await self.app(scope, _replay(messages, receive), send)
                return
        scope["app"] = self.fastapi
        scope["route"] = compiled.route
        scope["path_params"] = params
        request = Request(scope, receive)
        runtime: Runtime = self.fastapi.state.runtime
        try:
            caller = await caller_of(runtime, bearer_token(request))
            if isinstance(hot, HotStream):
                response = await hot.open(request, caller, params)
            else:
                response = await hot.handle(runtime, caller, params, model)
        except Exception as exc:
            response = await self._handled(request, exc)
        await response(scope, receive, send)

    def _plain(self, scope: Scope) -> bool:
        """A head within the body limit's bounds, a JSON content type and a
        ``Content-Length`` within the body limit: otherwise the framework's path decides."""
        headers = scope["headers"]
        if len(headers) > MAX_HEADER_COUNT:
            return False
        size = 0
        length: bytes | None = None
        content_type: bytes | None = None
        for name, value in headers:
            size += len(name) + len(value)
            if name == b"content-length":
                if length is not None:
                    return False
                length = value
            elif name == b"content-type":
                if content_type is not None:
                    return False
                content_type = value.lower()
        return (
            size <= MAX_HEADER_BYTES
            and content_type in _JSON
            and length is not None
            and length.isdigit()
            and int(length) <= self.max_body
        )

    async def _handled(self, request: Request, exc: Exception) -> Response:
        """The app's own answer to ``exc``: its exception handler for the nearest class."""
        handlers = self.fastapi.exception_handlers
        for cls in type(exc).__mro__:
            handler = handlers.get(cls)
            if handler is not None:
                response = handler(request, exc)
                if not isinstance(response, Response):
                    response = await response
                assert isinstance(response, Response)
                return response
        raise exc


def _bodiless(scope: Scope) -> bool:
    """A head within the body limit's bounds that announces no body (a stream request)."""
    headers = scope["headers"]
    if len(headers) > MAX_HEADER_COUNT:
        return False
    size = 0
    for name, value in headers:
        size += len(name) + len(value)
        if name == b"transfer-encoding" or (name == b"content-length" and value != b"0"):
            return False
    return size <= MAX_HEADER_BYTES


def _find(fastapi: FastAPI, hot: HotRoute | HotStream) -> APIRoute:
    for route in fastapi.router.routes:
        if isinstance(route, APIRoute) and route.path == hot.path and hot.method in (route.methods or ()):
            return route
    raise LookupError(f"no route {hot.method} {hot.path} to serve hot")


async def _read(receive: Receive, max_body: int) -> tuple[list[Message], bytes | None]:
    """The request's messages up to the end of its body, and the body: None if the
    client went away first, or if more came than ``max_body`` (whatever the head said;
    the framework's body limit then answers it)."""
    messages: list[Message] = []
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return messages, None
        size += len(message.get("body", b""))
        if size > max_body:
            return messages, None
        if not message.get("more_body", False):
            break
    if len(messages) == 1:
        return messages, message.get("body", b"")
    return messages, b"".join(m.get("body", b"") for m in messages)


def _validated(model: type[BaseModel], body: bytes) -> BaseModel | None:
    """``body`` as ``model``, or None when the framework must look at it.

    FastAPI parses with ``json.loads`` and validates the result in Python mode. orjson
    accepts a subset of what ``json.loads`` does (no NaN, no lone surrogates, no integer
    beyond 64 bits), and what both accept they read alike; a body that is not an object
    (or carries a byte-order mark, which ``json.loads`` refuses) is left to the framework.
    """
    if body[:1] != b"{":
        return None
    try:
        return model.model_validate(orjson.loads(body))
    except (orjson.JSONDecodeError, ValidationError):
        return None


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """A ``receive`` that hands out the messages already read, then the real ones."""
    pending = messages[::-1]

    async def replay_receive() -> Message:
        if pending:
            return pending.pop()
        return await receive()

    return replay_receive
