"""idle: server memory per idle SSE connection, and how many one process holds.

RSS (``VmRSS`` of the serving process) is read after a warm-up of a few streams, then after opening N more
(every subscriber group the fan-out and steady scenarios will use, plus idle ones up to N) and letting
them settle; the difference divided by N is the cost of one idle stream. In full mode the server is then
taken to the "held" total, which must all be open and counted by ``/health``.
"""

from __future__ import annotations

import asyncio

from bench import procstat
from bench.context import Context
from bench.fleet import Fleet, fleet
from bench.report import Result, Target
from bench.setup import health

WARM_GROUP = "idle-warm"
WARM_STREAMS = 100
FILLER_GROUP = "idle"
KIB = 1024
TARGET_KIB = 20.0


def server_rss(shared: Fleet) -> int:
    assert shared.server is not None
    return sum(procstat.rss_bytes(pid) for pid in shared.server.worker_pids())


async def settled_rss(shared: Fleet) -> int:
    await asyncio.sleep(1.5)
    return server_rss(shared)


async def run(ctx: Context, result: Result) -> None:
    plan = ctx.plan
    shared = await fleet(ctx)
    assert shared.server is not None
    assert shared.pool is not None
    await shared.ensure(WARM_GROUP, WARM_STREAMS)
    baseline_streams = shared.pool.total
    before = await settled_rss(shared)
    async with ctx.window(
        "idle-opens", profile_pid=shared.server.pid, server=[shared.server.pid], generator=shared.pool.pids
    ) as window:
        for group, size in shared.planned_groups().items():
            room = plan.idle_connections - (shared.pool.total - baseline_streams)
            await shared.ensure(group, min(size, shared.held(group) + room))
        room = plan.idle_connections - (shared.pool.total - baseline_streams)
        await shared.ensure(FILLER_GROUP, shared.held(FILLER_GROUP) + room)
    after = await settled_rss(shared)
    measured = shared.pool.total - baseline_streams
    per_connection = (after - before) / measured
    result.rows.append(
        {
            "connections": measured,
            "rss_before_mib": round(before / KIB / KIB, 1),
            "rss_after_mib": round(after / KIB / KIB, 1),
            "kib_per_connection": round(per_connection / KIB, 2),
            "server_streams": (await health(shared.server.url))["subscribers"],
            "opens_per_s": round(measured / window.seconds) if window.seconds else None,
            "server_ms_per_open": round(window.cpu_seconds("server") / measured * 1e3, 2),
            "server_cores_opening": window.cores("server"),
            **window.load_columns(),
        }
    )
    result.targets.append(
        Target("idle memory per connection", round(per_connection / KIB, 2), TARGET_KIB, False, " KiB")
    )
    if plan.idle_hold:
        more = plan.idle_hold - shared.pool.total
        opening = await shared.ensure(FILLER_GROUP, shared.held(FILLER_GROUP) + max(0, more))
        held_rss = await settled_rss(shared)
        streams = int(str((await health(shared.server.url))["subscribers"]))
        held = shared.pool.total
        result.rows.append(
            {
                "connections": held,
                "rss_before_mib": round(before / KIB / KIB, 1),
                "rss_after_mib": round(held_rss / KIB / KIB, 1),
                "kib_per_connection": round((held_rss - before) / (held - baseline_streams) / KIB, 2),
                "server_streams": streams,
                "opens_per_s": opening.get("opens_per_s"),
            }
        )
        result.targets.append(Target("streams held by one process", streams, plan.idle_hold, True))
    # Only the groups the later scenarios use stay open: fan-out is measured with as few idle
    # streams beside it as the plan allows (a process full of idle streams delivers more slowly).
    await shared.pool.close_some(FILLER_GROUP, shared.held(FILLER_GROUP))
    await shared.pool.close_some(WARM_GROUP, shared.held(WARM_GROUP))
    await asyncio.sleep(2)  # let the server wind the closed streams down
    result.notes.append(
        f"RSS of the server process from /proc/<pid>/status; {WARM_STREAMS} warm-up streams excluded; "
        f"server fd limit {procstat.fd_limit_of(shared.server.pid)}; "
        "the streams stay open for fanout and steady"
    )
