"""What the scenarios share: the options, the plan, the results folder, servers and measured windows."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import procstat
from bench.plan import FULL, QUICK, Plan
from bench.profiling import Recorder, summarize
from bench.server import POSTGRES_BENCH_URL, REDIS_BUS_URL, Server, reset_postgres_database

#: The machine counts as quiet below this many busy cores (our idle load generators included).
QUIET_CORES = 0.3
#: How long to wait for quiet before measuring anyway.
QUIET_PATIENCE = 3.0


@dataclass(frozen=True, slots=True)
class Options:
    quick: bool = False
    workers: int = 1
    gen_procs: int = 2
    profile: bool = False
    results_dir: Path = Path("bench/results")
    #: Steady configurations (subscribers, writes per second) instead of the plan's.
    steady: tuple[tuple[int, float], ...] = ()
    #: Time each live activity's way through the server (bench.latserve) into this file.
    latency_trace: Path | None = None


@dataclass(slots=True)
class Window:
    """CPU of named groups of processes over a measured window (filled in when the window closes)."""

    groups: dict[str, list[int]]
    before: procstat.CpuReading
    use: dict[str, procstat.CpuUse] = field(default_factory=dict)
    per_pid_cores: dict[int, float] = field(default_factory=dict)
    machine_before: tuple[float, float] = (0.0, 0.0)
    #: Cores busy on the whole machine (every process, and the kernel's softirq work) in the window.
    machine_cores: float = 0.0
    #: Busy cores not accounted to the measured processes (other processes, kernel network work).
    other_cores: float = 0.0
    #: Machine load just before the window (after waiting for quiet).
    load_before: float = 0.0
    profile: str | None = None

    @property
    def seconds(self) -> float:
        first = next(iter(self.use.values()), None)
        return 0.0 if first is None else first.wall_seconds

    def cores(self, group: str) -> float:
        return round(self.use[group].cores, 3)

    def cpu_seconds(self, group: str) -> float:
        return self.use[group].cpu_seconds

    def load_columns(self) -> dict[str, float]:
        """How disturbed the window was: busy cores not ours during it, and machine load just before."""
        return {"other_cores": self.other_cores, "load_before": self.load_before}

    def busiest(self, group: str) -> float:
        """The most cores any single process of the group used (1.0 = a process saturated its core)."""
        return round(max(self.per_pid_cores.get(pid, 0.0) for pid in self.groups[group]), 3)


class Context:
    def __init__(self, options: Options) -> None:
        self.options = options
        self.plan: Plan = QUICK if options.quick else FULL
        if options.steady:
            self.plan = dataclasses.replace(self.plan, steady=options.steady)
        self.results_dir = options.results_dir
        self.results_dir.mkdir(parents=True, exist_ok=True)
        #: Ceiling figures by key, measured once per run and shared by the scenarios that compare to them.
        self.ceiling: dict[str, dict[str, Any]] = {}
        self.profiles: dict[str, str] = {}
        #: The shared server of :mod:`bench.fleet`, while some scenario still needs it.
        self.fleet: Any = None

    async def release_fleet(self) -> None:
        if self.fleet is not None:
            fleet, self.fleet = self.fleet, None
            await fleet.close()

    @contextlib.asynccontextmanager
    async def syncstream(
        self,
        name: str,
        *,
        database: str = "sqlite",
        workers: int | None = None,
        bus_url: str | None = None,
        env: dict[str, str] | None = None,
        module: str = "syncstream.cli",
        ready_within: float = 60.0,
    ) -> AsyncIterator[Server]:
        """A fresh server (fresh database) for one scenario; stopped on exit whatever happens."""
        workers = self.options.workers if workers is None else workers
        trace = self.options.latency_trace
        if trace is not None and module == "syncstream.cli":
            module = "bench.latserve"
            env = {**(env or {}), "BENCH_LATSERVE_FILE": str(trace.resolve())}
        if database == "postgres":
            await reset_postgres_database()
            database_url = POSTGRES_BENCH_URL
        else:
            database_url = fresh_sqlite_url(self.results_dir / f"{name}.db")
        if workers > 1 and bus_url is None:
            bus_url = REDIS_BUS_URL
        server = Server(
            database_url,
            self.results_dir / f"{name}.server.log",
            bus_url=bus_url,
            workers=workers,
            env=env,
            module=module,
        )
        try:
            await server.start(ready_within)
            yield server
        finally:
            await server.stop()

    async def quiet(self, threshold: float = QUIET_CORES, patience: float = QUIET_PATIENCE) -> float:
        """Wait (at most ``patience`` s) until the machine is nearly idle; return the busy cores last seen.

        The machine may be shared (other people's test runs): a window measured while something else
        burns a core says little. The load seen at the start is reported with every figure anyway.
        """
        deadline = time.monotonic() + patience
        while True:
            busy0, _ = procstat.machine_busy_seconds()
            started = time.monotonic()
            await asyncio.sleep(0.3)
            busy1, _ = procstat.machine_busy_seconds()
            cores = (busy1 - busy0) / (time.monotonic() - started)
            if cores < threshold or time.monotonic() >= deadline:
                return round(cores, 2)

    @contextlib.asynccontextmanager
    async def window(
        self, name: str, profile_pid: int | None = None, **groups: list[int]
    ) -> AsyncIterator[Window]:
        """Measure CPU of each group of pids; with ``--profile``, record ``profile_pid`` with py-spy."""
        load_before = await self.quiet()
        recorder = None
        if self.options.profile and profile_pid is not None:
            recorder = Recorder(
                profile_pid, self.results_dir / f"{name}.pyspy.txt", subprocesses=self.options.workers > 1
            )
        all_pids = [pid for pids in groups.values() for pid in pids]
        window = Window(
            groups,
            procstat.read_cpu(all_pids),
            machine_before=procstat.machine_busy_seconds(),
            load_before=load_before,
        )
        try:
            yield window
        finally:
            after = procstat.read_cpu(all_pids)
            busy_after, _ = procstat.machine_busy_seconds()
            wall = after.wall - window.before.wall
            window.use = {g: procstat.cpu_between(window.before, after, pids) for g, pids in groups.items()}
            window.per_pid_cores = {
                pid: procstat.cpu_between(window.before, after, [pid]).cores for pid in all_pids
            }
            if wall > 0:
                window.machine_cores = round((busy_after - window.machine_before[0]) / wall, 3)
                ours = sum(use.cores for use in window.use.values())
                window.other_cores = round(max(0.0, window.machine_cores - ours), 3)
            if recorder is not None:
                raw = recorder.stop()
                summary = summarize(raw)
                text_path = raw.with_suffix(".summary.txt")
                text_path.write_text(summary.text() + "\n")
                window.profile = str(text_path)
                self.profiles[name] = str(text_path)


def fresh_sqlite_url(path: Path) -> str:
    """A ``sqlite:///`` URL for ``path``, with any database left there by an earlier run removed."""
    path = path.resolve()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return f"sqlite:///{path}"


def elapsed_since(start: float) -> float:
    return round(time.monotonic() - start, 2)
