"""A stream's own writes of its outbox are bounded by bytes (one frame always).

Live frames are shared between subscribers, but a write joins a backlog into bytes of that
stream's own: a client that let a backlog of big frames pile up (its transport paused) and
then read would have the whole backlog copied for it at once. Written in pieces instead."""

from __future__ import annotations

from syncstream.stream.subscriber import Subscriber


def backlog(sizes: list[int]) -> Subscriber:
    sub = Subscriber(index_key=None, cursor=0)
    sub.go_live()
    for n, size in enumerate(sizes, start=1):
        sub.deliver(n, bytes([96 + n]) * size)
    return sub


def test_a_backlog_is_taken_in_pieces_within_the_bound_in_order() -> None:
    sizes = [400, 300, 500, 100, 100, 900, 50]
    sub = backlog(sizes)
    writes = []
    while data := sub.take_all(1000):
        writes.append(data)
    assert [len(w) for w in writes] == [700, 700, 950]
    assert b"".join(writes) == b"".join(bytes([96 + n]) * s for n, s in enumerate(sizes, start=1))


def test_a_frame_over_the_bound_is_written_alone() -> None:
    sub = backlog([5000, 10, 10])
    assert len(sub.take_all(1000) or b"") == 5000
    assert sub.take_all(1000) == b"b" * 10 + b"c" * 10
    assert sub.take_all(1000) == b""  # nothing queued, still open


def test_without_a_bound_everything_goes_at_once() -> None:
    sub = backlog([400, 300, 500])
    assert len(sub.take_all() or b"") == 1200
