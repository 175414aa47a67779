"""SSEResponse driven by hand: through the ASGI ``send`` on an unknown server, and with
direct writes on a server shaped like uvicorn's httptools one."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from syncstream.stream.direct import Flusher, HeldStream, chunk
from syncstream.stream.response import SSEResponse
from syncstream.stream.subscriber import Subscriber


async def no_catch_up(sub: Subscriber) -> AsyncIterator[bytes]:
    sub.go_live()
    yield b"offset;"


def response(sub: Subscriber, closed: list[Subscriber]) -> SSEResponse:
    return SSEResponse(sub, no_catch_up(sub), on_open=lambda s: None, on_close=closed.append, retry_ms=1000)


async def test_through_send_when_the_transport_is_out_of_reach() -> None:
    sub, closed = Subscriber(index_key=None, cursor=0), list[Subscriber]()
    bodies: list[bytes] = []
    leave = asyncio.Event()

    async def send(message: Any) -> None:
        bodies.append(message.get("body", b"<start>"))
        if bodies[-1].endswith(b"offset;"):
            sub.deliver(1, b"f1;")
            sub.close("ended", b"bye;")

    async def receive() -> Any:
        await leave.wait()
        return {"type": "http.disconnect"}

    await response(sub, closed).run(send, receive, flusher=Flusher(asyncio.get_running_loop()))
    assert bodies[0] == b"<start>"
    # The retry hint goes out with catch-up's first chunk.
    assert bodies[1] == b"retry: 1000\n\noffset;"
    assert b"".join(bodies[2:]) == b"f1;bye;"
    assert closed == [sub]


class FakeTransport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.protocol: Any = None
        self.closing = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def abort(self) -> None: ...

    def get_protocol(self) -> Any:
        return self.protocol

    def set_protocol(self, protocol: Any) -> None:
        self.protocol = protocol


class FakeFlow:
    write_paused = False


class FakeCycle:
    """What the hand-over reads of uvicorn's httptools request cycle and protocol."""

    def __init__(self) -> None:
        self.transport = FakeTransport()
        self.transport.protocol = self  # stands for the server protocol too
        self.cycle = self
        self.connections: set[Any] = {self}
        self.flow = FakeFlow()
        self.message_event = asyncio.Event()
        self.chunked_encoding = True
        self.keep_alive = False
        self.response_complete = False
        self.bodies: list[bytes] = []

    def __hash__(self) -> int:
        return id(self)

    async def send(self, message: Any) -> None:
        body = message.get("body", b"")
        if body:
            self.bodies.append(body)
            self.transport.writes.append(chunk(body))

    async def receive(self) -> Any:
        await self.message_event.wait()
        return {"type": "http.disconnect"}


async def test_a_live_stream_is_handed_over_and_its_task_ends() -> None:
    sub, closed = Subscriber(index_key=None, cursor=0), list[Subscriber]()
    cycle = FakeCycle()
    await response(sub, closed).run(cycle.send, cycle.receive, flusher=Flusher(asyncio.get_running_loop()))
    held = cycle.transport.protocol
    assert isinstance(held, HeldStream)
    assert cycle.connections == {held}
    assert cycle.response_complete
    sub.deliver(1, b"f1;")
    sub.deliver(2, b"f2;")
    await asyncio.sleep(0)
    assert cycle.transport.writes[-1] == chunk(b"f1;f2;")  # by the flusher, not through send
    assert b"f1;f2;" not in cycle.bodies
    held.connection_lost(None)
    assert closed == [sub]
    assert sub.close_reason == "client_disconnected"
