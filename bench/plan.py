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
    #: Streams opened each way by ``opens``, and dropped and resumed at once by ``storm``.
    opens_streams: int
    storm_streams: int
    workers_subscribers: int
    workers_write_seconds: float
    #: Also measure the ceiling writing ten frames per ``transport.write`` (what batching is worth).
    ceiling_coalesced: bool
    #: Wall-clock bound of each scenario, by name (every wait inside is bounded too). Generous: a
    #: scenario normally takes a fraction of it (see docs/performance.md for measured durations).
    bounds: tuple[tuple[str, float], ...]

    def bound(self, scenario: str) -> float:
        return dict(self.bounds).get(scenario, 120.0)


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
    opens_streams=10_000,
    storm_streams=10_000,
    workers_subscribers=1000,
    workers_write_seconds=3.0,
    ceiling_coalesced=True,
    bounds=(
        ("ceiling", 150.0),
        ("idle", 480.0),  # opens 15,000 streams: the server opens about 70-120 a second
        ("fanout", 300.0),
        ("steady", 180.0),
        ("writes", 90.0),
        ("catchup", 90.0),
        ("opens", 120.0),
        ("storm", 180.0),
        ("workers", 180.0),
    ),
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
    opens_streams=2000,
    storm_streams=2000,
    workers_subscribers=200,
    workers_write_seconds=1.0,
    ceiling_coalesced=False,
    bounds=(
        ("ceiling", 60.0),
        ("idle", 90.0),
        ("fanout", 90.0),
        ("steady", 90.0),
        ("writes", 60.0),
        ("catchup", 60.0),
        ("opens", 60.0),
        ("storm", 90.0),
        ("workers", 90.0),
    ),
)

#: Warm-up creates before each measured burst (first-use costs are not what is measured).
WARMUP_WRITES = 5
