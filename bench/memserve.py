"""``syncstream`` under tracemalloc: the server command, plus a snapshot on ``SIGUSR1``.

Run as ``python -m bench.memserve serve ...`` (the same arguments as ``syncstream serve``). Each
``SIGUSR1`` writes a tracemalloc snapshot to ``$BENCH_MEMSERVE_DIR/snapshot-<n>.bin``; see
:mod:`bench.memtrace`, which compares two of them.
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
import tracemalloc
from pathlib import Path
from types import FrameType

FRAMES = 12


def _install() -> None:
    out = Path(os.environ.get("BENCH_MEMSERVE_DIR", "."))
    count = 0

    def dump(signum: int, frame: FrameType | None) -> None:
        nonlocal count
        count += 1
        tracemalloc.take_snapshot().dump(str(out / f"snapshot-{count}.bin"))
        (out / f"snapshot-{count}.done").touch()

    signal.signal(signal.SIGUSR1, dump)


if __name__ == "__main__":
    tracemalloc.start(FRAMES)
    _install()
    cli = importlib.import_module("syncstream.cli")
    sys.exit(cli.main(sys.argv[1:]))
