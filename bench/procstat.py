"""CPU time and memory of processes, read from ``/proc`` (Linux only).

A server started with ``--workers N`` is a supervisor plus N children, so every reading can cover a process
tree. CPU is ``utime + stime`` from ``/proc/<pid>/stat``; memory is ``VmRSS`` from ``/proc/<pid>/status``.
"""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def raise_fd_limit(wanted: int = 65536) -> int:
    """Raise ``RLIMIT_NOFILE`` to ``wanted`` if allowed, else to the hard limit; return the new soft limit.

    Raising the hard limit needs ``CAP_SYS_RESOURCE``, which a container may not grant.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= wanted:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, max(wanted, hard)))
        return wanted
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        return hard


def fd_limit() -> int:
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def fd_limit_of(pid: int) -> int | None:
    """The soft ``RLIMIT_NOFILE`` of another process, from ``/proc/<pid>/limits``."""
    try:
        with open(f"/proc/{pid}/limits") as f:
            for line in f:
                if line.startswith("Max open files"):
                    return int(line.split()[3])
    except (OSError, ValueError):
        pass
    return None


def _stat_fields(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read().decode()
    except OSError:
        return None
    # The command name is in parentheses and may contain spaces: split after the last ')'.
    return raw[raw.rfind(")") + 2 :].split()


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process (0 if it is gone)."""
    fields = _stat_fields(pid)
    if fields is None:
        return 0.0
    # After the command: state(0) ppid(1) ... utime(11) stime(12).
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def parent_pid(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return None if fields is None else int(fields[1])


def children(pid: int) -> list[int]:
    """Direct children of ``pid``."""
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit() and parent_pid(int(name)) == pid:
            found.append(int(name))
    return sorted(found)


def tree(pid: int) -> list[int]:
    """``pid`` and all its descendants."""
    result = [pid]
    frontier = [pid]
    while frontier:
        nxt = []
        for p in frontier:
            nxt.extend(children(p))
        result.extend(nxt)
        frontier = nxt
    return result


def rss_bytes(pid: int) -> int:
    """Resident set size of one process, in bytes (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def socket_count(pid: int) -> int:
    """How many sockets a process has open (its connections, roughly)."""
    count = 0
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:"):
                    count += 1
            except OSError:
                continue
    except OSError:
        pass
    return count


@dataclass(frozen=True, slots=True)
class CpuReading:
    wall: float
    cpu: dict[int, float]


def read_cpu(pids: Iterable[int]) -> CpuReading:
    return CpuReading(time.monotonic(), {pid: cpu_seconds(pid) for pid in pids})


@dataclass(frozen=True, slots=True)
class CpuUse:
    """CPU used by a group of processes over a wall-clock window."""

    cpu_seconds: float
    wall_seconds: float

    @property
    def cores(self) -> float:
        """Average cores busy (1.0 = one core fully used)."""
        return self.cpu_seconds / self.wall_seconds if self.wall_seconds > 0 else 0.0


def cpu_between(before: CpuReading, after: CpuReading, pids: Sequence[int] | None = None) -> CpuUse:
    keys = after.cpu.keys() if pids is None else pids
    used = sum(after.cpu.get(p, 0.0) - before.cpu.get(p, 0.0) for p in keys)
    return CpuUse(used, after.wall - before.wall)


def machine_busy_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, all cores, from ``/proc/stat``."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    total = sum(fields[:8])  # user nice system idle iowait irq softirq steal
    return (total - idle) / CLOCK_TICKS, total / CLOCK_TICKS
