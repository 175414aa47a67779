"""The lifetime of a process's streams: the heap they live in, ending them all at
shutdown, and as soon as the server is told to stop."""

from __future__ import annotations

import asyncio
import gc
import signal
import threading
from types import FrameType
from typing import Any

from syncstream.runtime import Runtime
from syncstream.stream.frames import close_frame

#: ``gc``'s third threshold while syncstream runs (CPython's default is 10).
FULL_COLLECTION_THRESHOLD = 100


def settle_heap() -> None:
    """Once started: what start-up made (modules, routes, the schema) lives as long as the
    process, so it is moved out of the cyclic collector's way (``gc.freeze``), and full
    collections run a tenth as often. While thousands of streams reopen at once (a
    restart) the heap grows by a quarter again and again, and each full pass walked every
    open stream: half of the collector's time in a 10,000-stream storm
    (docs/performance.md). Young collections, which free a request's garbage, run as
    before."""
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_COLLECTION_THRESHOLD)


def close_streams(runtime: Runtime, reason: str = "shutdown") -> None:
    """End every open stream cleanly (clients resume elsewhere with Last-Event-ID), and
    refuse new ones from now on. Each gets ``event: close`` last, so a client knows to
    reconnect at once rather than back off as from a failure."""
    runtime.closing = True
    frame = close_frame(reason)
    for sub in runtime.subscribers.get_all():
        sub.close(reason, frame)


def close_streams_on_exit_signal(runtime: Runtime) -> None:
    """Close streams as soon as the server is told to stop.

    Servers such as uvicorn wait for open connections to finish before they run the
    lifespan shutdown, and an SSE stream never finishes by itself: so on SIGTERM/SIGINT
    we end every stream first (cleanly, clients resume elsewhere), then hand the signal
    on to the server's own handler.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        previous = signal.getsignal(sig)

        def handler(signum: int, frame: FrameType | None, previous: Any = previous) -> None:
            loop.call_soon_threadsafe(close_streams, runtime)
            if callable(previous):
                previous(signum, frame)

        signal.signal(sig, handler)
