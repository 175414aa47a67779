"""Held streams: the per-loop flusher, the protocol a live stream's connection is handed
to, and how that protocol ends the stream (the end-to-end paths run in tests/streams)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from syncstream.stream.direct import FLUSH_SLICE, LAST_CHUNK, Flusher, HeldStream, chunk, hand_over
from syncstream.stream.helpers import PING_FRAME, keep_alive
from syncstream.stream.subscriber import SLOW_CONSUMER_FRAME, Subscriber


@dataclass
class FakeTransport:
    writes: list[bytes] = field(default_factory=list)
    closing: bool = False
    aborted: bool = False
    reading: bool = True
    protocol: Any = None
    written: asyncio.Event = field(default_factory=asyncio.Event)

    def write(self, data: bytes) -> None:
        self.writes.append(data)
        self.written.set()

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def abort(self) -> None:
        self.aborted = True

    def get_protocol(self) -> Any:
        return self.protocol

    def set_protocol(self, protocol: Any) -> None:
        self.protocol = protocol

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True


@dataclass
class Live:
    sub: Subscriber
    held: HeldStream
    transport: FakeTransport
    closed: list[Subscriber]
    released: list[bool]
    connections: set[Any]


def held(flusher: Flusher, *, origin: Any = None, keep_alive: bool = True) -> Live:
    sub = Subscriber(index_key="k", cursor=0, max_queued=5)
    sub.go_live()
    transport, closed, released = FakeTransport(), list[Subscriber](), list[bool]()
    connections: set[Any] = set()
    stream = HeldStream(
        transport,  # type: ignore[arg-type]
        sub,
        flusher,
        on_close=closed.append,
        release=lambda: released.append(True),
        connections=connections,
        origin=origin,
        paused=False,
        keep_alive=keep_alive,
    )
    connections.add(stream)
    transport.protocol = stream
    sub.attach(stream)
    return Live(sub, stream, transport, closed, released, connections)


async def test_one_chunk_per_loop_iteration_shared_by_subscribers() -> None:
    flusher = Flusher(asyncio.get_running_loop())
    a, b = held(flusher), held(flusher)
    for live in (a, b):
        live.sub.deliver(1, b"f1;")
        live.sub.deliver(2, b"f2;")
    assert a.transport.writes == b.transport.writes == []  # nothing is written inside routing
    await asyncio.sleep(0)  # the flusher runs once the routing task yields
    assert a.transport.writes == [chunk(b"f1;f2;")]
    assert a.transport.writes[0] is b.transport.writes[0]
    assert a.sub.queued == b.sub.queued == 0


async def test_a_big_fan_out_is_written_in_slices_with_the_loop_running_between() -> None:
    """More dirty outboxes than one slice: the first slice is written in one iteration, the
    rest in later ones, and what the loop had ready meanwhile (a request, the tailer) runs
    in between; every outbox is written once, in order, with what arrived meanwhile."""
    flusher = Flusher(asyncio.get_running_loop())
    streams = [held(flusher) for _ in range(FLUSH_SLICE * 2 + 5)]
    for live in streams:
        live.sub.deliver(1, b"f1;")
    between: list[int] = []
    asyncio.get_running_loop().call_soon(
        lambda: between.append(sum(bool(s.transport.writes) for s in streams))
    )
    await asyncio.sleep(0)
    assert sum(bool(live.transport.writes) for live in streams) == FLUSH_SLICE
    assert between == [FLUSH_SLICE]  # ran after the first slice, before the second
    for live in streams:
        live.sub.deliver(2, b"f2;")  # arrives while the pass goes on
    deadline = asyncio.get_running_loop().time() + 5
    while any(live.sub.queued for live in streams):
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0)
    for live in streams[:FLUSH_SLICE]:
        assert live.transport.writes == [chunk(b"f1;"), chunk(b"f2;")]
    for live in streams[FLUSH_SLICE:]:
        assert live.transport.writes == [chunk(b"f1;f2;")]  # not yet written: one chunk


async def test_a_paused_transport_keeps_the_outbox_until_it_resumes() -> None:
    flusher = Flusher(asyncio.get_running_loop())
    live = held(flusher)
    live.held.pause_writing()
    live.sub.deliver(1, b"f1;")
    await asyncio.sleep(0)
    live.sub.deliver(2, b"f2;")
    await asyncio.sleep(0)
    assert live.transport.writes == []
    live.held.resume_writing()
    await live.transport.written.wait()
    assert live.transport.writes == [chunk(b"f1;f2;")]


async def test_close_writes_the_rest_ends_the_response_and_closes_without_keep_alive() -> None:
    flusher = Flusher(asyncio.get_running_loop())
    live = held(flusher, keep_alive=False)
    live.sub.deliver(1, b"f1;")
    live.sub.close("ended", b"bye;")
    await asyncio.sleep(0)
    assert live.transport.writes == [chunk(b"f1;bye;"), LAST_CHUNK]
    assert live.transport.closing
    assert live.closed == [live.sub]
    assert live.released == [True]
    live.held.connection_lost(None)  # what the transport then reports: nothing twice
    assert live.closed == [live.sub]
    assert live.released == [True]
    assert live.connections == set()


class NextProtocol:
    """What the connection goes back to: uvicorn's protocol, as far as hand-back calls it."""

    def __init__(self, config: Any, server_state: Any, app_state: Any, _loop: Any) -> None:
        self.made: Any = None
        self.completed = False
        self.received: list[bytes] = []

    def connection_made(self, transport: Any) -> None:
        self.made = transport

    def on_response_complete(self) -> None:
        self.completed = True

    def data_received(self, data: bytes) -> None:
        self.received.append(data)


async def test_an_ended_stream_hands_the_connection_back_with_what_the_client_sent() -> None:
    flusher = Flusher(asyncio.get_running_loop())
    origin = (NextProtocol, object(), object(), {}, asyncio.get_running_loop())
    live = held(flusher, origin=origin)
    live.held.data_received(b"GET /next HTTP/1.1\r\n")  # pipelined behind the stream
    live.sub.close("ended", b"bye;")
    await asyncio.sleep(0)
    assert live.transport.writes == [chunk(b"bye;"), LAST_CHUNK]
    assert not live.transport.closing
    protocol = live.transport.protocol
    assert isinstance(protocol, NextProtocol)
    assert protocol.made is live.transport
    assert protocol.completed
    assert protocol.received == [b"GET /next HTTP/1.1\r\n"]
    assert live.connections == set()  # the new protocol registers itself


async def test_shutdown_closes_the_connection_when_the_stream_ends() -> None:
    flusher = Flusher(asyncio.get_running_loop())
    origin = (NextProtocol, object(), object(), {}, asyncio.get_running_loop())
    live = held(flusher, origin=origin)
    live.held.shutdown()
    live.sub.close("shutdown", b"close;")
    await asyncio.sleep(0)
    assert live.transport.closing
    assert live.transport.protocol is live.held


async def test_overflow_while_paused_cuts_behind_what_is_buffered() -> None:
    flusher = Flusher(asyncio.get_running_loop())
    live = held(flusher)
    live.held.pause_writing()
    for i in range(1, 8):
        live.sub.deliver(i, b"f%d;" % i)
    assert live.sub.close_reason == "slow_consumer"
    assert live.transport.writes == [chunk(SLOW_CONSUMER_FRAME) + LAST_CHUNK]
    assert live.transport.closing
    assert live.closed == [live.sub]
    assert live.released == [True]


async def test_overflow_on_a_writable_transport_ends_the_response_in_order() -> None:
    flusher = Flusher(asyncio.get_running_loop())
    live = held(flusher, keep_alive=False)
    for i in range(1, 8):  # more than max_queued within one loop iteration
        live.sub.deliver(i, b"f%d;" % i)
    await asyncio.sleep(0)
    assert live.transport.writes == [chunk(SLOW_CONSUMER_FRAME), LAST_CHUNK]
    assert live.closed == [live.sub]


async def test_a_lost_connection_closes_the_subscriber_once() -> None:
    flusher = Flusher(asyncio.get_running_loop())
    live = held(flusher)
    live.sub.deliver(1, b"f1;")
    live.transport.closing = True
    live.held.connection_lost(ConnectionResetError())
    await asyncio.sleep(0)
    assert live.sub.close_reason == "client_disconnected"
    assert live.transport.writes == []
    assert live.closed == [live.sub]
    assert live.released == [True]
    assert live.connections == set()


async def test_flushed_writes_count_for_keep_alive() -> None:
    flusher = Flusher(asyncio.get_running_loop())
    busy, idle = held(flusher), held(flusher)
    busy.sub.last_write = idle.sub.last_write = 0.0
    busy.sub.deliver(1, b"f1;")
    await busy.transport.written.wait()
    assert busy.sub.last_write > 0.0  # the flush counts as a write: no ping due for a while
    pinger = asyncio.ensure_future(keep_alive(lambda: [busy.sub, idle.sub], interval=60.0))
    try:
        await idle.transport.written.wait()  # the first sweep pings the idle one
    finally:
        pinger.cancel()
    assert idle.transport.writes == [chunk(PING_FRAME)]
    assert busy.transport.writes == [chunk(b"f1;")]


class FakeFlow:
    write_paused = False
    read_paused = False


SERVER = (object(), object(), dict[str, Any]())


class FakeServerProtocol:
    """uvicorn's httptools protocol, as far as hand-over reads it."""

    def __init__(self, cycle: Any, connections: set[Any]) -> None:
        self.cycle = cycle
        self.connections = connections
        self.pipeline: list[Any] = []
        self.disarmed = False
        self.config, self.server_state, self.app_state = SERVER  # the same for every connection
        self.loop = asyncio.get_running_loop()

    def _disarm_all(self) -> None:
        self.disarmed = True


class FakeCycle:
    def __init__(self) -> None:
        self.transport = FakeTransport()
        self.flow = FakeFlow()
        self.chunked_encoding = True
        self.keep_alive = True
        self.response_complete = False


async def test_hand_over_takes_the_connection_and_completes_the_cycle() -> None:
    flusher = Flusher(asyncio.get_running_loop())
    cycle, connections = FakeCycle(), set[Any]()
    server = FakeServerProtocol(cycle, connections)
    connections.add(server)
    cycle.transport.protocol = server
    sub = Subscriber(index_key=None, cursor=0)
    sub.go_live()
    sub.deliver(1, b"f1;")  # queued before the hand-over: written right after it
    stream = hand_over(cycle, sub, flusher, lambda s: None, None)
    assert stream is not None
    assert cycle.transport.protocol is stream
    assert connections == {stream}
    assert cycle.response_complete
    assert server.disarmed
    await cycle.transport.written.wait()
    assert cycle.transport.writes == [chunk(b"f1;")]
    assert flusher.origin(server) is flusher.origin(FakeServerProtocol(cycle, connections))


async def test_no_hand_over_with_a_request_pipelined_behind() -> None:
    flusher = Flusher(asyncio.get_running_loop())
    cycle, connections = FakeCycle(), set[Any]()
    server = FakeServerProtocol(cycle, connections)
    server.pipeline.append(object())
    cycle.transport.protocol = server
    sub = Subscriber(index_key=None, cursor=0)
    assert hand_over(cycle, sub, flusher, lambda s: None, None) is None
    assert cycle.transport.protocol is server
    assert not cycle.response_complete
