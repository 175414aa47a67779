"""Bounds on what a request may bring: a body over the configured size gets
``413 payload_too_large``, a head with too many or too large header fields ``431``."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from syncstream.problems import problem_response

#: Bounds of a request's head; a browser sends ~20 headers in a few KiB. (uvicorn's
#: httptools parser has no bound of its own: see docs/reliability.md.)
MAX_HEADER_COUNT = 100
MAX_HEADER_BYTES = 64 * 1024


class BodyLimitMiddleware:
    """413 for bodies over the limit, whether announced by Content-Length or streamed;
    and 431 for a head with too many or too large header fields.

    The body is read here, before the application sees the request: a limit enforced
    while the application reads would surface inside FastAPI's body parsing, which turns
    every read error into a 400. Buffering costs nothing extra, since FastAPI buffers
    the whole body anyway; requests without a body (streams) pass straight through.

    The head is checked first. uvicorn (with httptools) accepts any number of header
    fields of any size, and the application would then read, parse and log them all; a
    header flood gets a clear ``431 request_header_fields_too_large`` (RFC 6585) instead
    of being served. (tests/hardening/test_hostile_input.py found 200,000 headers, 2 MB,
    answered with a 200.)
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = scope["headers"]
        if len(headers) > MAX_HEADER_COUNT or sum(len(n) + len(v) for n, v in headers) > MAX_HEADER_BYTES:
            detail = (
                f"requests may carry at most {MAX_HEADER_COUNT} header fields "
                f"and {MAX_HEADER_BYTES} bytes of them"
            )
            response = problem_response(431, "request_header_fields_too_large", detail)
            await response(scope, _no_receive, send)
            return
        if self._announced_too_large(scope):
            await self._too_large(scope, send)
            return
        first = await _read_body(receive, self.max_bytes)
        if first is None:
            await self._too_large(scope, send)
            return
        await self.app(scope, _replay(first, receive), send)

    def _announced_too_large(self, scope: Scope) -> bool:
        for name, value in scope["headers"]:
            if name == b"content-length" and (not value.isdigit() or int(value) > self.max_bytes):
                return True
        return False

    async def _too_large(self, scope: Scope, send: Send) -> None:
        response = problem_response(
            413, "payload_too_large", f"request bodies are limited to {self.max_bytes} bytes"
        )
        await response(scope, _no_receive, send)


async def _read_body(receive: Receive, max_bytes: int) -> Message | None:
    """The whole body as one ``http.request`` message (or the disconnect that cut it
    short), or None once it exceeds ``max_bytes``."""
    chunks: list[bytes] = []
    received = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return message
        chunk = message.get("body", b"")
        received += len(chunk)
        if received > max_bytes:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return {"type": "http.request", "body": b"".join(chunks), "more_body": False}


def _replay(first: Message, receive: Receive) -> Receive:
    """A ``receive`` that hands out the buffered body once, then the real messages
    (a stream still learns that its client disconnected)."""
    pending: list[Message] = [first]

    async def replay_receive() -> Message:
        if pending:
            return pending.pop()
        return await receive()

    return replay_receive


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}
