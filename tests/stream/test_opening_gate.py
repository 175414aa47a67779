"""StreamMiddleware's opening slots: nothing a client does can hold one.

The middleware is driven directly, as the ASGI server would, with an application behind it
that opens streams as slowly as a test wants (the edge of the unit). The attack through real
sockets is in tests/hardening/test_admission.py.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from starlette.types import Message, Receive, Scope, Send

from syncstream.stream.response import StreamMiddleware

pytestmark = pytest.mark.asyncio(loop_scope="session")

#: The explicit stream marker (an application's comes from its stream routes: StreamPaths).
STREAMS = {"/pages/stream"}.__contains__


def scope(path: str = "/pages/stream", headers: list[tuple[bytes, bytes]] | None = None) -> Scope:
    return {
        "type": "http",
        "method": "GET",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"live=sse",
        "headers": headers or [],
    }


async def no_body() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


class Recorder:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def __call__(self, message: Message) -> None:
        self.messages.append(message)

    @property
    def status(self) -> int:
        return int(self.messages[0]["status"])

    @property
    def headers(self) -> dict[bytes, bytes]:
        return dict(self.messages[0]["headers"])

    def problem(self) -> dict[str, Any]:
        assert self.headers[b"content-type"] == b"application/problem+json"
        body: dict[str, Any] = orjson.loads(b"".join(m.get("body", b"") for m in self.messages[1:]))
        return body


class HeldApp:
    """Takes each request into its slot and holds it until released: an open that is slow
    on the server's side (a database read), or, with ``start_first``, a response that has
    started and whose body the client does not read."""

    def __init__(self, start_first: bool = False) -> None:
        self.start_first = start_first
        self.entered = 0
        self.arrived = asyncio.Event()
        self.release = asyncio.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.entered += 1
        self.arrived.set()
        if self.start_first:
            await send({"type": "http.response.start", "status": 200, "headers": []})
        await self.release.wait()
        if not self.start_first:
            await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}", "more_body": False})


async def until_entered(app: HeldApp, count: int) -> None:
    async with asyncio.timeout(10):
        while app.entered < count:
            app.arrived.clear()
            await app.arrived.wait()


@pytest.mark.parametrize(
    "header",
    [(b"content-length", b"5"), (b"transfer-encoding", b"chunked")],
    ids=["content-length", "chunked"],
)
async def test_a_stream_request_with_a_body_is_refused_without_a_slot(header: tuple[bytes, bytes]) -> None:
    app = HeldApp()
    middleware = StreamMiddleware(app, is_stream=STREAMS, max_opening=1)
    sent = Recorder()
    await asyncio.wait_for(middleware(scope(headers=[header]), no_body, sent), 10)
    assert sent.status == 400
    assert sent.headers[b"connection"] == b"close"  # the announced body was never read
    assert sent.problem()["type"] == "bad_request"
    assert app.entered == 0


async def test_an_empty_content_length_is_no_body() -> None:
    app = HeldApp()
    app.release.set()
    sent = Recorder()
    await StreamMiddleware(app, is_stream=STREAMS)(scope(headers=[(b"content-length", b"0")]), no_body, sent)
    assert sent.status == 200


async def test_a_request_that_waits_too_long_for_a_slot_gets_503_with_retry_after() -> None:
    app = HeldApp()
    middleware = StreamMiddleware(app, is_stream=STREAMS, max_opening=2, open_wait_seconds=0.2)
    holders = [asyncio.create_task(middleware(scope(), no_body, Recorder())) for _ in range(2)]
    await until_entered(app, 2)
    late = Recorder()
    await asyncio.wait_for(middleware(scope(), no_body, late), 10)
    assert late.status == 503
    assert late.headers[b"retry-after"] == b"2"
    assert late.problem()["type"] == "unavailable"
    assert app.entered == 2
    app.release.set()
    await asyncio.wait_for(asyncio.gather(*holders), 10)


async def test_a_slot_is_given_back_as_the_response_starts() -> None:
    """A client that does not read its answer (the send never returns) holds no slot."""
    app = HeldApp(start_first=True)
    middleware = StreamMiddleware(app, is_stream=STREAMS, max_opening=1, open_wait_seconds=5)
    first = asyncio.create_task(middleware(scope(), no_body, Recorder()))
    await until_entered(app, 1)
    second = asyncio.create_task(middleware(scope(), no_body, Recorder()))
    await until_entered(app, 2)  # in while the first still "sends"
    app.release.set()
    await asyncio.wait_for(asyncio.gather(first, second), 10)


async def test_other_paths_never_wait_for_a_slot() -> None:
    app = HeldApp()
    middleware = StreamMiddleware(app, is_stream=STREAMS, max_opening=1, open_wait_seconds=0.1)
    held = asyncio.create_task(middleware(scope(), no_body, Recorder()))
    await until_entered(app, 1)
    rest = asyncio.create_task(middleware(scope("/health", [(b"content-length", b"5")]), no_body, Recorder()))
    await until_entered(app, 2)
    app.release.set()
    await asyncio.wait_for(asyncio.gather(held, rest), 10)
