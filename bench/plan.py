"""How big each scenario is, in full and in ``--quick`` mode: every count and duration in one place."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Plan:
    fanout_sizes: tuple[int, ...]
    burst: int
    burst_concurrency: int
    steady: tuple[tuple[int, float], ...]  # (subscribers, writes per second)
    steady_seconds: float
    writes_clients: int
    writes_seconds: float
    idle_connections: int
    idle_hold: int  # total connections for the "held by one process" check; 0 = skip
    catchup_activities: int
    workers_subscribers: int
    workers_write_seconds: float
    #: Wall-clock bound of each scenario (they also bound every wait inside).
    scenario_timeout: float


FULL = Plan(
    fanout_sizes=(1000, 5000),
    burst=200,
    burst_concurrency=16,
    steady=((1000, 20.0), (100, 200.0)),
    steady_seconds=10.0,
    writes_clients=32,
    writes_seconds=5.0,
    idle_connections=10_000,
    idle_hold=15_000,
    catchup_activities=50_000,
    workers_subscribers=1000,
    workers_write_seconds=3.0,
    scenario_timeout=150.0,
)

QUICK = Plan(
    fanout_sizes=(1000,),
    burst=200,
    burst_concurrency=16,
    steady=((1000, 20.0), (100, 200.0)),
    steady_seconds=3.0,
    writes_clients=32,
    writes_seconds=2.0,
    idle_connections=2000,
    idle_hold=0,
    catchup_activities=50_000,
    workers_subscribers=500,
    workers_write_seconds=1.5,
    scenario_timeout=60.0,
)

#: Warm-up creates before each measured burst (first-use costs are not what is measured).
WARMUP_WRITES = 5
