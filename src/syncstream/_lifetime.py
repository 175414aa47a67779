"""The lifetime of a process's streams: ending them all at shutdown, and as soon as the
server is told to stop."""

from __future__ import annotations

import asyncio
import signal
import threading
from types import FrameType
from typing import Any

from syncstream.runtime import Runtime
from syncstream.stream.frames import close_frame


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
