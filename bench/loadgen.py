"""The coordinator's side of the load generator: pools of child processes and their merged results."""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field
from typing import Any

from bench.children import Child, call_all, call_each
from bench.subscribers import SubscriberWorker, sse_request
from bench.writers import WriterWorker

#: Streams being opened at once, per child process (the server's accept backlog is 2048).
OPEN_CONCURRENCY = 64


def split(total: int, parts: int) -> list[int]:
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


@dataclass(slots=True)
class Collected:
    """What every subscriber of a pool received, merged."""

    subscribers: int = 0
    complete: int = 0
    lost: int = 0
    duplicated: int = 0
    unexpected: int = 0
    out_of_order: int = 0
    closed: int = 0
    errors: int = 0
    deliveries: int = 0
    last_received_ns: int = 0
    latencies: array[int] = field(default_factory=lambda: array("q"))


class SubscriberPool:
    """``procs`` child processes holding SSE subscribers in named groups, each group spread evenly."""

    def __init__(self, procs: int) -> None:
        self.children = [Child(SubscriberWorker, f"subscribers-{i}") for i in range(procs)]
        self.held: dict[str, int] = {}

    @property
    def pids(self) -> list[int]:
        return [child.pid for child in self.children]

    @property
    def total(self) -> int:
        return sum(self.held.values())

    async def open(
        self,
        group: str,
        host: str,
        port: int,
        path: str,
        token: str | None,
        count: int,
        within: float,
        concurrency: int = OPEN_CONCURRENCY,
    ) -> dict[str, Any]:
        request = sse_request(host, port, path, token)
        replies = await call_each(
            self.children,
            "open",
            within + 10,
            [
                {
                    "group": group,
                    "host": host,
                    "port": port,
                    "request": request,
                    "count": n,
                    "concurrency": concurrency,
                    "within": within,
                }
                for n in split(count, len(self.children))
            ],
        )
        self.held[group] = sum(r["held"] for r in replies)
        return {
            "opened": sum(r["opened"] for r in replies),
            "failed": sum(r["failed"] for r in replies),
            "seconds": max(r["seconds"] for r in replies),
            "failures": [f for r in replies for f in r["failures"]][:5],
            "held": self.held[group],
        }

    async def reset(self, group: str) -> None:
        await call_all(self.children, "reset", 30, group=group)

    async def wait_for(self, group: str, last_id: int, within: float) -> int:
        """Wait until every subscriber of ``group`` has ``last_id``; returns how many are still behind."""
        replies = await call_all(
            self.children, "wait_for", within + 10, group=group, last_id=last_id, within=within
        )
        return sum(r["behind"] for r in replies)

    async def collect(self, group: str, after: int, expected: list[int], within: float) -> Collected:
        replies = await call_all(
            self.children, "collect", within + 60, group=group, after=after, expected=expected, within=within
        )
        merged = Collected()
        for r in replies:
            for name in ("subscribers", "complete", "lost", "duplicated", "unexpected", "out_of_order"):
                setattr(merged, name, getattr(merged, name) + r[name])
            merged.closed += r["closed"]
            merged.errors += r["errors"]
            merged.deliveries += r["deliveries"]
            merged.last_received_ns = max(merged.last_received_ns, r["last_received_ns"])
            merged.latencies.frombytes(r["latencies"])
        return merged

    async def close_some(self, group: str, count: int) -> None:
        await call_each(
            self.children,
            "close_some",
            30,
            [{"group": group, "count": n} for n in split(count, len(self.children))],
        )
        self.held[group] = self.held.get(group, 0) - count

    async def stop(self) -> None:
        for child in self.children:
            await child.stop()


class Writer:
    """One child process sending creates (see :class:`bench.writers.WriterWorker`)."""

    def __init__(self) -> None:
        self.child = Child(WriterWorker, "writer")

    @property
    def pid(self) -> int:
        return self.child.pid

    async def configure(self, host: str, port: int, org: str, token: str) -> None:
        await self.child.call("configure", 10, host=host, port=port, org=org, token=token)

    async def burst(self, count: int, concurrency: int, within: float) -> dict[str, Any]:
        result: dict[str, Any] = await self.child.call(
            "burst", within + 10, count=count, concurrency=concurrency, within=within
        )
        return result

    async def paced(self, rate: float, seconds: float) -> dict[str, Any]:
        result: dict[str, Any] = await self.child.call("paced", seconds + 30, rate=rate, seconds=seconds)
        return result

    async def closed_loop(self, clients: int, seconds: float) -> dict[str, Any]:
        result: dict[str, Any] = await self.child.call(
            "closed_loop", seconds + 30, clients=clients, seconds=seconds
        )
        return result

    async def stop(self) -> None:
        await self.child.stop()


def statuses_ok(report: dict[str, Any]) -> tuple[int, int]:
    """(successful creates, failed requests) of a writer report."""
    statuses: dict[str, int] = report["statuses"]
    ok = sum(v for k, v in statuses.items() if k in ("200", "201"))
    return ok, sum(statuses.values()) - ok


def failures_text(report: dict[str, Any]) -> str:
    """Non-2xx outcomes as ``status:count`` (``-1``: still unanswered when the load's time was up)."""
    statuses: dict[str, int] = report["statuses"]
    return " ".join(f"{k}:{v}" for k, v in sorted(statuses.items()) if k not in ("200", "201")) or "-"


def latencies_of(report: dict[str, Any]) -> array[int]:
    values = array("q")
    values.frombytes(report["latencies"])
    return values
