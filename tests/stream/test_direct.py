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


def direct(flusher: Flusher, cursor: int = 0) -> tuple[Subscriber, Sink, FakeTransport, FakeFlow]:
    sub = Subscriber(index_key="k", cursor=cursor, max_queued=5)
    sub.go_live()
    transport, flow = FakeTransport(), FakeFlow()
    sink = Sink(transport, flow)  # type: ignore[arg-type]
    sub.attach(sink, flusher)
    return sub, sink, transport, flow


async def test_one_chunk_per_loop_iteration_shared_by_subscribers() -> None:
    flusher = Flusher(asyncio.get_running_loop())
    (a, _, ta, _), (b, _, tb, _) = direct(flusher), direct(flusher)
    for sub in (a, b):
        sub.deliver(1, b"f1;")
        sub.deliver(2, b"f2;")
    assert ta.writes == tb.writes == []  # nothing is written inside routing
    await asyncio.sleep(0)  # the flusher runs once the routing task yields
    assert ta.writes == [chunk(b"f1;f2;")]
    assert ta.writes[0] is tb.writes[0]
    assert a.queued == b.queued == 0


async def test_paused_transport_hands_the_outbox_to_the_task_in_order() -> None:
    flusher = Flusher(asyncio.get_running_loop())
    sub, _, transport, flow = direct(flusher)
    flow.write_paused = True
    sub.deliver(1, b"f1;")
    waiter = asyncio.ensure_future(sub.wait())
    await asyncio.sleep(0)
    await waiter  # the flusher woke the task instead of writing
    assert transport.writes == []
    sub.deliver(2, b"f2;")
    assert sub.take_all() == b"f1;f2;"


async def test_busy_task_is_never_overtaken() -> None:
    flusher = Flusher(asyncio.get_running_loop())
    sub, sink, transport, _ = direct(flusher)
    sink.busy = True  # the task took bytes from the outbox and is writing them
    sub.deliver(1, b"f1;")
    await asyncio.sleep(0)
    assert transport.writes == []
    assert sub.take_all() == b"f1;"
    sink.busy = False
    sub.deliver(2, b"f2;")
    await asyncio.sleep(0)
    assert transport.writes == [chunk(b"f2;")]


async def test_closing_and_closed_transports_are_left_to_the_task() -> None:
    flusher = Flusher(asyncio.get_running_loop())
    sub, _, transport, _ = direct(flusher)
    sub.deliver(1, b"f1;")
    sub.close("ended", b"bye;")
    await asyncio.sleep(0)
    assert transport.writes == []
    assert sub.take_all() == b"f1;bye;"
    other, _, gone, _ = direct(flusher)
    gone.closing = True
    other.deliver(1, b"f1;")
    await asyncio.sleep(0)
    assert gone.writes == []


async def test_overflow_while_paused_still_cuts() -> None:
    flusher = Flusher(asyncio.get_running_loop())
    sub, _, _, flow = direct(flusher)
    flow.write_paused = True
    cut: list[Subscriber] = []
    sub.on_overflow = cut.append
    for i in range(1, 8):
        sub.deliver(i, b"f%d;" % i)
    assert cut == [sub]
    assert sub.close_reason == "slow_consumer"


async def test_flushed_writes_count_for_keep_alive() -> None:
    flusher = Flusher(asyncio.get_running_loop())
    busy, _, busy_transport, _ = direct(flusher)
    idle, _, idle_transport, _ = direct(flusher)
    busy.last_write = idle.last_write = 0.0
    busy.deliver(1, b"f1;")
    await busy_transport.written.wait()
    assert busy.last_write > 0.0  # the flush counts as a write: no ping due for a while
    pinger = asyncio.ensure_future(keep_alive(lambda: [busy, idle], interval=60.0))
    try:
        await idle_transport.written.wait()  # the first sweep pings the idle one
    finally:
        pinger.cancel()
    assert idle_transport.writes == [chunk(PING_FRAME)]
    assert busy_transport.writes == [chunk(b"f1;")]
