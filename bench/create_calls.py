"""Python calls per create in the server's event loop: a deterministic figure beside the noisy CPU times.

``python -m bench.create_calls [N]`` serves the app in this process (uvicorn, uvloop, syncstream's
protocols) on a throw-away SQLite file, signs a user up and makes an organization over HTTP, then sends
``N`` creates (default 300) one after another from a client thread while cProfile records the event
loop's thread (the SQLite writer thread is not profiled), and prints the calls per create. Run it on
two trees (``PYTHONPATH=OTHER/src``) to compare them: the count does not move with the machine's load.
"""

from __future__ import annotations

import asyncio
import cProfile
import http.client
import json
import os
import pstats
import sys
import tempfile
import threading
import time
from typing import Any

import uvicorn
import uvloop

from bench.server import free_port


def _client(port: int, count: int, warm: threading.Event, go: threading.Event, done: Any) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    for _ in range(600):  # until the server listens: at most 30 s
        try:
            conn.connect()
            break
        except ConnectionRefusedError:
            time.sleep(0.05)

    def call(path: str, body: dict[str, Any], token: str | None = None) -> tuple[int, Any]:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        conn.request("POST", path, body=json.dumps(body), headers=headers)
        response = conn.getresponse()
        data = response.read()
        return response.status, json.loads(data) if data else None

    _, signed_up = call(
        "/auth/sign-up", {"email": "calls@example.test", "password": "correct-horse", "name": "C"}
    )
    token = signed_up["token"]
    call("/organizations", {"name": "Calls", "slug": "calls"}, token)
    for index in range(20):  # caches filled, first-use paths taken
        call("/organizations/calls/attachments", {"name": f"warm{index}"}, token)
    warm.set()
    go.wait(30)
    for index in range(count):
        status, _ = call("/organizations/calls/attachments", {"name": f"n{index}"}, token)
        if status != 201:
            raise RuntimeError(f"create answered {status}")
    done()


async def _measure(count: int) -> float:
    port = free_port()
    config = uvicorn.Config(
        "syncstream.app:create_app",
        factory=True,
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="syncstream.protocols:HttpToolsProtocol",
        log_level="warning",
        access_log=False,
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    loop = asyncio.get_running_loop()
    finished: asyncio.Future[None] = loop.create_future()
    warm, go = threading.Event(), threading.Event()
    thread = threading.Thread(
        target=_client,
        args=(port, count, warm, go, lambda: loop.call_soon_threadsafe(finished.set_result, None)),
        daemon=True,
    )
    thread.start()
    await asyncio.to_thread(warm.wait, 60)
    profiler = cProfile.Profile()
    profiler.enable()
    go.set()
    await asyncio.wait_for(finished, 120)
    profiler.disable()
    server.should_exit = True
    await serving
    stats: Any = pstats.Stats(profiler)
    return float(sum(entry[1] for entry in stats.stats.values())) / count


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    with tempfile.TemporaryDirectory(prefix="create_calls_") as folder:
        os.environ["SYNCSTREAM_DATABASE_URL"] = f"sqlite:///{folder}/calls.db"
        calls = uvloop.run(_measure(count))
    print(f"{calls:.0f} Python calls per create in the server's event loop ({count} creates)")


if __name__ == "__main__":
    main()
