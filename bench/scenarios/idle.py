"""idle: server memory per idle SSE connection, and how many one process holds.

RSS (``VmRSS`` of the serving processes) is read after a warm-up of a few streams, then after opening
N more and letting them settle; the difference divided by N is the cost of one idle stream. In full mode
the server is then taken to the "held" total, which must all be open and reported by ``/health``.
"""

from __future__ import annotations

import asyncio
import time

from bench import procstat
from bench.context import Context
from bench.loadgen import SubscriberPool
from bench.report import Result, Target
from bench.scenarios.fanout import open_subscribers
from bench.server import Server
from bench.setup import health, make_tenant

WARM_STREAMS = 100
KIB = 1024
TARGET_KIB = 20.0
#: Subscriber processes: each holds its share of the connections (and of the fd limit).
MIN_PROCS = 4


def server_rss(server: Server) -> int:
    return sum(procstat.rss_bytes(pid) for pid in server.worker_pids())


async def settled_rss(server: Server) -> int:
    await asyncio.sleep(1.5)
    return server_rss(server)


async def run(ctx: Context) -> Result:
    started = time.monotonic()
    result = Result("idle")
    plan = ctx.plan
    async with ctx.syncstream("idle") as server:
        tenant = await make_tenant(server.url)
        pool = SubscriberPool(max(MIN_PROCS, ctx.options.gen_procs))
        try:
            await open_subscribers(pool, server, tenant, WARM_STREAMS)
            before = await settled_rss(server)
            opening = await open_subscribers(pool, server, tenant, WARM_STREAMS + plan.idle_connections)
            after = await settled_rss(server)
            per_connection = (after - before) / plan.idle_connections
            subscribers = (await health(server.url))["subscribers"]
            result.rows.append(
                {
                    "connections": plan.idle_connections,
                    "rss_before_mib": round(before / KIB / KIB, 1),
                    "rss_after_mib": round(after / KIB / KIB, 1),
                    "kib_per_connection": round(per_connection / KIB, 2),
                    "server_subscribers": subscribers,
                    **opening,
                }
            )
            result.targets.append(
                Target("idle memory per connection", round(per_connection / KIB, 2), TARGET_KIB, False, " KiB")
            )
            if plan.idle_hold:
                opening = await open_subscribers(pool, server, tenant, WARM_STREAMS + plan.idle_hold)
                held_rss = await settled_rss(server)
                subscribers = (await health(server.url))["subscribers"]
                held = pool.held - WARM_STREAMS
                result.rows.append(
                    {
                        "connections": held,
                        "rss_before_mib": round(before / KIB / KIB, 1),
                        "rss_after_mib": round(held_rss / KIB / KIB, 1),
                        "kib_per_connection": round((held_rss - before) / held / KIB, 2),
                        "server_subscribers": subscribers,
                        **opening,
                    }
                )
                result.targets.append(
                    Target("connections held by one process", held, plan.idle_hold, True)
                )
        finally:
            await pool.stop()
    result.notes.append(
        f"RSS of the server process(es) from /proc/<pid>/status; {WARM_STREAMS} warm-up streams "
        f"excluded; server fd limit {procstat.fd_limit()}"
    )
    result.seconds = time.monotonic() - started
    return result
