"""The scenarios, in the order a full run takes them (the ceiling first: the others compare to it)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from bench.context import Context
from bench.report import Result
from bench.scenarios import catchup, ceiling, fanout, idle, steady, workers, writes

Scenario = Callable[[Context], Awaitable[Result]]

SCENARIOS: dict[str, Scenario] = {
    "ceiling": ceiling.run,
    "fanout": fanout.run,
    "steady": steady.run,
    "writes": writes.run,
    "idle": idle.run,
    "catchup": catchup.run,
    "workers": workers.run,
}
