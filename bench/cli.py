"""``python -m bench [--quick] [--scenario NAME ...] [--workers N] [--json-out FILE]``.

Runs the chosen scenarios (all by default) one after another, each within its own time bound, printing
for each one JSON line and a readable table; ``--json-out`` also writes every result to one JSON file.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import uvloop

from bench import procstat
from bench.context import Context, Options
from bench.report import Result, print_result
from bench.scenarios import FLEET_USERS, ON_REQUEST, SCENARIOS


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="syncstream's benchmark: fan-out, steady, writes, idle, catch-up, workers and the "
        "framework-free ceiling; see docs/performance.md.",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smaller and shorter (aims at < 1 min; opening streams makes it ~2-3 min today)",
    )
    parser.add_argument(
        "--scenario",
        action="append",
        choices=sorted(SCENARIOS),
        metavar="NAME",
        help=f"run only these (repeatable): {', '.join(SCENARIOS)} ({', '.join(ON_REQUEST)} only when named)",
    )
    parser.add_argument(
        "--workers", type=int, default=1, help="server processes for the scenarios (>1 uses the Redis bus)"
    )
    parser.add_argument(
        "--gen-procs", type=int, default=2, help="subscriber processes of the load generator (default 2)"
    )
    parser.add_argument("--json-out", type=Path, help="write all results to this JSON file")
    parser.add_argument(
        "--profile", action="store_true", help="record the server with py-spy in each measured window"
    )
    parser.add_argument(
        "--steady",
        action="append",
        type=_steady_config,
        metavar="SUBSxRATE",
        help="steady configurations instead of the plan's, e.g. 1000x200 (repeatable)",
    )
    parser.add_argument(
        "--latency-trace",
        type=Path,
        help="run the server under bench.latserve and write each activity's stage times to this file",
    )
    parser.add_argument(
        "--results-dir",
        type=Path,
        default=Path(__file__).resolve().parent / "results",
        help="server logs, databases and profiles (default bench/results)",
    )
    return parser


def _steady_config(text: str) -> tuple[int, float]:
    subscribers, _, rate = text.partition("x")
    try:
        return int(subscribers), float(rate)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected SUBSCRIBERSxRATE, e.g. 1000x200, not {text!r}") from None


def source_version() -> str:
    """The commit measured, with ``+dirty`` when ``src/`` has uncommitted changes (read-only git)."""
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "src"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("+dirty" if dirty else "")


def machine() -> dict[str, Any]:
    return {
        "source": source_version(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "fd_limit": procstat.fd_limit(),
    }


async def run(options: Options, names: Sequence[str]) -> list[Result]:
    ctx = Context(options)
    results = []
    try:
        for i, name in enumerate(names):
            started = time.monotonic()
            result = Result(name)
            bound = ctx.plan.bound(name)
            task = asyncio.ensure_future(SCENARIOS[name](ctx, result))
            done, _ = await asyncio.wait([task], timeout=bound)
            if not done:
                task.cancel()
                await asyncio.wait([task])
                result.error = f"stopped at its time bound of {bound:.0f} s (rows so far are kept)"
            elif task.exception() is not None:  # one failed scenario must not hide the others' figures
                exc = task.exception()
                result.error = f"{type(exc).__name__}: {exc}"
            if result.error or not FLEET_USERS.intersection(names[i + 1 :]):
                # After a failure the shared subscribers are in an unknown state: the next user starts anew.
                await ctx.release_fleet()
            result.seconds = time.monotonic() - started
            print_result(result)
            results.append(result)
    finally:
        await ctx.release_fleet()
    return results


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.workers < 1 or args.gen_procs < 1:
        print("--workers and --gen-procs must be at least 1", file=sys.stderr)
        return 2
    procstat.raise_fd_limit()
    names = [n for n in SCENARIOS if (n not in ON_REQUEST if args.scenario is None else n in args.scenario)]
    options = Options(
        quick=args.quick,
        workers=args.workers,
        gen_procs=args.gen_procs,
        profile=args.profile,
        results_dir=args.results_dir,
        steady=tuple(args.steady or ()),
        latency_trace=args.latency_trace,
    )
    started = time.monotonic()
    date = datetime.now(UTC).isoformat(timespec="seconds")
    command = "python -m bench " + " ".join(sys.argv[1:] if argv is None else argv)
    print(f"# {command}  ({date}, {machine()})", flush=True)
    results = uvloop.run(run(options, names))
    total = time.monotonic() - started
    print(f"# total {total:.1f} s", flush=True)
    if args.json_out:
        document = {
            "command": command,
            "date": date,
            "machine": machine(),
            "quick": args.quick,
            "seconds": round(total, 1),
            "results": [r.to_json() for r in results],
        }
        args.json_out.write_text(json.dumps(document, indent=2) + "\n")
    return 1 if any(r.error for r in results) else 0
