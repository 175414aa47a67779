"""Direct writes: the per-loop flusher, and when it leaves the outbox to the stream's task."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from syncstream.stream.direct import Flusher, Sink, chunk
from syncstream.stream.helpers import PING_FRAME, keep_alive
from syncstream.stream.subscriber import Subscriber


@dataclass
class FakeFlow:
    write_paused: bool = False


@dataclass
class FakeTransport:
    writes: list[bytes] = field(default_factory=list)
    closing: bool = False
    written: asyncio.Event = field(default_factory=asyncio.Event)

    def write(self, data: bytes) -> None:
        self.writes.append(data)
        self.written.set()

    def is_closing(self) -> bool:
        return self.closing


@dataclass
class Live:
    """A live subscriber attached to a fake sink; ``woken`` is set when it wakes its task."""

    sub: Subscriber
    sink: Sink
    transport: FakeTransport
    flow: FakeFlow
    woken: asyncio.Event


def direct(flusher: Flusher) -> Live:
    sub = Subscriber(index_key="k", cursor=0, max_queued=5)
    sub.go_live()
    transport, flow, woken = FakeTransport(), FakeFlow(), asyncio.Event()
    sink = Sink(transport, flow, woken.set, flusher)  # type: ignore[arg-type]
    sub.attach(sink)
    return Live(sub, sink, transport, flow, woken)


async def test_one_chunk_per_loop_iteration_shared_by_subscribers() -> None:
    flusher = Flusher(asyncio.get_running_loop())
    a, b = direct(flusher), direct(flusher)
    for live in (a, b):
        live.sub.deliver(1, b"f1;")
        live.sub.deliver(2, b"f2;")
    assert a.transport.writes == b.transport.writes == []  # nothing is written inside routing
    await asyncio.sleep(0)  # the flusher runs once the routing task yields
    assert a.transport.writes == [chunk(b"f1;f2;")]
    assert a.transport.writes[0] is b.transport.writes[0]
    assert a.sub.queued == b.sub.queued == 0


async def test_paused_transport_hands_the_outbox_to_the_task_in_order() -> None:
    flusher = Flusher(asyncio.get_running_loop())
    live = direct(flusher)
    live.flow.write_paused = True
    live.sub.deliver(1, b"f1;")
    await live.woken.wait()  # the flusher woke the stream's task instead of writing
    assert live.transport.writes == []
    live.sub.deliver(2, b"f2;")
    assert live.sub.take_all() == b"f1;f2;"


async def test_busy_task_is_never_overtaken() -> None:
    flusher = Flusher(asyncio.get_running_loop())
    live = direct(flusher)
    live.sink.busy = True  # the task took bytes from the outbox and is writing them
    live.sub.deliver(1, b"f1;")
    await asyncio.sleep(0)
    assert live.transport.writes == []
    assert not live.woken.is_set()  # it comes back for the outbox by itself
    assert live.sub.take_all() == b"f1;"
    live.sink.busy = False
    live.sub.deliver(2, b"f2;")
    await asyncio.sleep(0)
    assert live.transport.writes == [chunk(b"f2;")]


async def test_closing_and_closed_transports_are_left_to_the_task() -> None:
    flusher = Flusher(asyncio.get_running_loop())
    live = direct(flusher)
    live.sub.deliver(1, b"f1;")
    live.sub.close("ended", b"bye;")
    assert live.woken.is_set()  # the task writes the rest and ends the response
    await asyncio.sleep(0)
    assert live.transport.writes == []
    assert live.sub.take_all() == b"f1;bye;"
    gone = direct(flusher)
    gone.transport.closing = True
    gone.sub.deliver(1, b"f1;")
    await asyncio.sleep(0)
    assert gone.transport.writes == []


async def test_overflow_while_paused_still_cuts() -> None:
    flusher = Flusher(asyncio.get_running_loop())
    live = direct(flusher)
    live.flow.write_paused = True
    cut: list[Subscriber] = []
    live.sub.on_overflow = cut.append
    for i in range(1, 8):
        live.sub.deliver(i, b"f%d;" % i)
    assert cut == [live.sub]
    assert live.sub.close_reason == "slow_consumer"


async def test_flushed_writes_count_for_keep_alive() -> None:
    flusher = Flusher(asyncio.get_running_loop())
    busy, idle = direct(flusher), direct(flusher)
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
