"""Where an idle stream's memory goes: ``python -m bench.memtrace [--connections N]``.

Starts the server under tracemalloc (:mod:`bench.memserve`), opens a few warm-up streams, snapshots,
opens N idle streams, snapshots again, and prints the allocation sites that grew, in bytes per
connection, next to the RSS growth per connection. Not part of the timed run: tracemalloc slows the
server down several times.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import tracemalloc
from pathlib import Path

import uvloop

from bench import procstat
from bench.context import Context, Options
from bench.loadgen import SubscriberPool
from bench.server import HOST
from bench.setup import make_tenant

WARM = 50


async def _snapshot(pid: int, folder: Path, n: int) -> tracemalloc.Snapshot:
    os.kill(pid, signal.SIGUSR1)
    done = folder / f"snapshot-{n}.done"
    for _ in range(600):
        if done.exists():
            return tracemalloc.Snapshot.load(str(folder / f"snapshot-{n}.bin"))
        await asyncio.sleep(0.1)
    raise RuntimeError("the server wrote no snapshot")


async def trace(connections: int, top: int, results: Path) -> str:
    folder = (results / "memtrace").resolve()
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("snapshot-*"):
        old.unlink()
    ctx = Context(Options(results_dir=results))
    lines = []
    async with ctx.syncstream(
        # tracemalloc makes startup slow: minutes on a busy machine.
        "memtrace",
        env={"BENCH_MEMSERVE_DIR": str(folder)},
        module="bench.memserve",
        ready_within=300,
    ) as server:
        tenant = await make_tenant(server.url)
        pool = SubscriberPool(2)
        path = tenant.stream_path + "?offset=now&live=sse"
        try:
            await pool.open("warm", HOST, server.port, path, tenant.token, WARM, 120)
            await asyncio.sleep(1)
            rss0 = procstat.rss_bytes(server.pid)
            before = await _snapshot(server.pid, folder, 1)
            opened = await pool.open("idle", HOST, server.port, path, tenant.token, connections, 600)
            await asyncio.sleep(1)
            rss1 = procstat.rss_bytes(server.pid)
            after = await _snapshot(server.pid, folder, 2)
        finally:
            await pool.stop()
    n = opened["opened"]
    stats = after.compare_to(before, "lineno")
    traced = sum(s.size_diff for s in stats)
    lines.append(f"{n} idle streams: RSS +{(rss1 - rss0) / n / 1024:.1f} KiB each (tracemalloc on), ")
    lines.append(f"traced Python allocations +{traced / n / 1024:.1f} KiB each; top sites (bytes/stream):")
    for stat in stats[:top]:
        frame = stat.traceback[0]
        lines.append(
            f"  {stat.size_diff / n:8.0f}  {stat.count_diff / n:6.1f} blocks  {frame.filename}:{frame.lineno}"
        )
    by_file = after.compare_to(before, "filename")
    lines.append("by file (bytes/stream):")
    lines += [f"  {s.size_diff / n:8.0f}  {s.traceback[0].filename}" for s in by_file[:top]]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.memtrace", description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=2000)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--results-dir", type=Path, default=Path(__file__).resolve().parent / "results")
    args = parser.parse_args()
    procstat.raise_fd_limit()
    print(uvloop.run(trace(args.connections, args.top, args.results_dir)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
