"""py-spy around a measured window, and a text summary of where the time went.

``py-spy record --format raw`` writes collapsed stacks (``frame;frame;... count``, root first). The summary
gives each function's *self* share (samples where it is the innermost frame) and *inclusive* share
(samples where it is anywhere on the stack), which is what the report quotes.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path


def py_spy_binary() -> str | None:
    beside_python = Path(sys.executable).with_name("py-spy")
    return str(beside_python) if beside_python.exists() else shutil.which("py-spy")


class Recorder:
    """Records one process (and, with ``subprocesses``, its children) until :meth:`stop`."""

    def __init__(self, pid: int, output: Path, *, rate: int = 250, subprocesses: bool = False) -> None:
        binary = py_spy_binary()
        if binary is None:
            raise RuntimeError("py-spy is not installed: pip install py-spy")
        self.output = output
        command = [binary, "record", "--pid", str(pid), "--rate", str(rate), "--format", "raw"]
        command += ["--output", str(output), "--function", "--nonblocking", "--gil"]
        if subprocesses:
            command.append("--subprocesses")
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(0.3)  # let it attach before the window starts

    def stop(self) -> Path:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.output


#: Innermost-frame package → the layer its time is charged to.
LAYERS = {
    "syncstream": "syncstream",
    "sqlalchemy": "sqlalchemy",
    "greenlet": "sqlalchemy",
    "aiosqlite": "sqlite driver (aiosqlite threads)",
    "sqlite3": "sqlite driver (aiosqlite threads)",
    "asyncpg": "asyncpg",
    "fastapi": "fastapi/starlette/pydantic",
    "starlette": "fastapi/starlette/pydantic",
    "pydantic": "fastapi/starlette/pydantic",
    "pydantic_core": "fastapi/starlette/pydantic",
    "anyio": "fastapi/starlette/pydantic",
    "uvicorn": "uvicorn + httptools",
    "httptools": "uvicorn + httptools",
    "asyncio": "event loop (uvloop C code, asyncio)",
    "uvloop": "event loop (uvloop C code, asyncio)",
    "threading.py": "thread hand-offs (threading, queue)",
    "queue.py": "thread hand-offs (threading, queue)",
    "concurrent": "thread hand-offs (threading, queue)",
    "orjson": "syncstream",
    "redis": "bus client",
    "nats": "bus client",
    "logging": "logging",
}
#: Frames on (nearly) every stack: they say nothing about where time goes.
ROOT_FRAMES = (
    "_run_code",
    "_run_module_as_main",
    "<module>",
    "main (syncstream/cli.py)",
    "_serve (syncstream/cli.py)",
    "run (uvicorn/main.py)",
    "Server.run (uvicorn/server.py)",
    "asyncio_run (uvicorn/_compat.py)",
    "Runner.run (asyncio/runners.py)",
    "Thread._bootstrap",
    "Thread.run (",
)


@dataclass(frozen=True, slots=True)
class Summary:
    samples: int
    self_share: list[tuple[str, float]]
    inclusive_share: list[tuple[str, float]]
    layer_share: list[tuple[str, float]]

    def text(self) -> str:
        lines = [f"{self.samples} samples (py-spy --gil: Python code holding the GIL)", "by layer (self):"]
        lines += [f"  {share:6.1%}  {name}" for name, share in self.layer_share]
        lines.append("self:")
        lines += [f"  {share:6.1%}  {name}" for name, share in self.self_share]
        lines.append("inclusive:")
        lines += [f"  {share:6.1%}  {name}" for name, share in self.inclusive_share]
        return "\n".join(lines)


def _short(frame: str) -> str:
    """``send (uvicorn/protocols/http/httptools_impl.py:463)`` → ``send (http/httptools_impl.py)``."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    parts = path.split("/")
    return f"{name} ({'/'.join(parts[-2:])})" if where else name


def _layer(frame: str) -> str:
    path = frame.partition(" (")[2]
    head = path.split("/", 1)[0].split(":", 1)[0]
    return LAYERS.get(head, "other")


def summarize(raw: Path, top: int = 25) -> Summary:
    self_counts: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    layers: Counter[str] = Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        raw_frames = [f for f in stack.split(";") if " (" in f]
        if not raw_frames:
            continue
        frames = [_short(f) for f in raw_frames]
        total += count
        self_counts[frames[-1]] += count
        layers[_layer(raw_frames[-1])] += count
        for frame in set(frames):
            if not frame.startswith(ROOT_FRAMES):
                inclusive[frame] += count
    if total == 0:
        return Summary(0, [], [], [])
    return Summary(
        total,
        [(name, n / total) for name, n in self_counts.most_common(top)],
        [(name, n / total) for name, n in inclusive.most_common(top * 2)],
        [(name, n / total) for name, n in layers.most_common()],
    )
