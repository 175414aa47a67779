"""What the scenarios share: the options, the plan, the results folder, servers and measured windows."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import procstat
from bench.plan import FULL, QUICK, Plan
from bench.profiling import Recorder, summarize
from bench.server import POSTGRES_BENCH_URL, REDIS_BUS_URL, Server, reset_postgres_database


@dataclass(frozen=True, slots=True)
class Options:
    quick: bool = False
    workers: int = 1
    gen_procs: int = 2
    profile: bool = False
    results_dir: Path = Path("bench/results")


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
    profile: str | None = None

    @property
    def seconds(self) -> float:
        first = next(iter(self.use.values()), None)
        return 0.0 if first is None else first.wall_seconds

    def cores(self, group: str) -> float:
        return round(self.use[group].cores, 3)

    def cpu_seconds(self, group: str) -> float:
        return self.use[group].cpu_seconds

    def busiest(self, group: str) -> float:
        """The most cores any single process of the group used (1.0 = a process saturated its core)."""
        return round(max(self.per_pid_cores.get(pid, 0.0) for pid in self.groups[group]), 3)


class Context:
    def __init__(self, options: Options) -> None:
        self.options = options
        self.plan: Plan = QUICK if options.quick else FULL
        self.results_dir = options.results_dir
        self.results_dir.mkdir(parents=True, exist_ok=True)
        #: Ceiling figures by key, measured once per run and shared by the scenarios that compare to them.
        self.ceiling: dict[str, dict[str, Any]] = {}
        self.profiles: dict[str, str] = {}

    @contextlib.asynccontextmanager
    async def syncstream(
        self,
        name: str,
        *,
        database: str = "sqlite",
        workers: int | None = None,
        bus_url: str | None = None,
        env: dict[str, str] | None = None,
    ) -> AsyncIterator[Server]:
        """A fresh server (fresh database) for one scenario; stopped on exit whatever happens."""
        workers = self.options.workers if workers is None else workers
        if database == "postgres":
            await reset_postgres_database()
            database_url = POSTGRES_BENCH_URL
        else:
            path = (self.results_dir / f"{name}.db").resolve()
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
            database_url = f"sqlite:///{path}"
        if workers > 1 and bus_url is None:
            bus_url = REDIS_BUS_URL
        server = Server(
            database_url, self.results_dir / f"{name}.server.log", bus_url=bus_url, workers=workers, env=env
        )
        try:
            await server.start()
            yield server
        finally:
            await server.stop()

    @contextlib.contextmanager
    def window(self, name: str, profile_pid: int | None = None, **groups: list[int]) -> Iterator[Window]:
        """Measure CPU of each group of pids; with ``--profile``, record ``profile_pid`` with py-spy."""
        recorder = None
        if self.options.profile and profile_pid is not None:
            recorder = Recorder(
                profile_pid, self.results_dir / f"{name}.pyspy.txt", subprocesses=self.options.workers > 1
            )
        all_pids = [pid for pids in groups.values() for pid in pids]
        window = Window(groups, procstat.read_cpu(all_pids), machine_before=procstat.machine_busy_seconds())
        try:
            yield window
        finally:
            after = procstat.read_cpu(all_pids)
            busy_after, _ = procstat.machine_busy_seconds()
            wall = after.wall - window.before.wall
            window.machine_cores = round((busy_after - window.machine_before[0]) / wall, 3) if wall else 0.0
            window.use = {g: procstat.cpu_between(window.before, after, pids) for g, pids in groups.items()}
            window.per_pid_cores = {
                pid: procstat.cpu_between(window.before, after, [pid]).cores for pid in all_pids
            }
            if recorder is not None:
                raw = recorder.stop()
                summary = summarize(raw)
                text_path = raw.with_suffix(".summary.txt")
                text_path.write_text(summary.text() + "\n")
                window.profile = str(text_path)
                self.profiles[name] = str(text_path)


def elapsed_since(start: float) -> float:
    return round(time.monotonic() - start, 2)
