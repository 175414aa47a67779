"""fanout: N subscribers on one organization stream, then a burst of creates through the API.

Per size: deliveries per second (deliveries over the time from the first create sent to the last frame
received), that time, latency (create sent → frame received, both on ``CLOCK_MONOTONIC``), lost messages,
and CPU of the server, of the subscriber processes and of the writer. Then the same as a ratio to the
ceiling measured in this run.
"""

from __future__ import annotations

import time

from bench.context import Context
from bench.loadgen import SubscriberPool, Writer, statuses_ok
from bench.plan import WARMUP_WRITES
from bench.report import Result, Row, Target
from bench.scenarios.ceiling import ceiling_fanout, fanout_key
from bench.server import HOST, Server
from bench.setup import Tenant, activity_ids_after, make_tenant, newest_id
from bench.stats import latency_summary_ms, ratio

OPEN_TIMEOUT = 120.0
TARGET_RATIO = 0.5


def live_path(tenant: Tenant) -> str:
    return tenant.stream_path + "?offset=now&live=sse"


async def open_subscribers(pool: SubscriberPool, server: Server, tenant: Tenant, total: int) -> Row:
    """Grow the pool to ``total`` live subscribers; fail loudly if any stream did not open."""
    more = total - pool.held
    if more <= 0:
        return {}
    opened = await pool.open(HOST, server.port, live_path(tenant), tenant.token, more, OPEN_TIMEOUT)
    if opened["failed"]:
        raise RuntimeError(f"{opened['failed']} of {more} streams failed to open: {opened['failures']}")
    return {"opens_per_s": round(more / opened["seconds"]) if opened["seconds"] else None}


async def fanout_round(
    ctx: Context, server: Server, tenant: Tenant, pool: SubscriberPool, writer: Writer, label: str
) -> Row:
    """One measured burst to the subscribers ``pool`` holds."""
    plan = ctx.plan
    await writer.burst(WARMUP_WRITES, WARMUP_WRITES, 30)
    start = await newest_id(tenant)
    await pool.wait_for(start, 30)
    await pool.reset()
    with ctx.window(
        label, profile_pid=server.pid, server=server.all_pids(), generator=pool.pids, writer=[writer.pid]
    ) as window:
        sent = await writer.burst(plan.burst, plan.burst_concurrency, 120)
        target = await newest_id(tenant)
        behind = await pool.wait_for(target, 90)
    expected = await activity_ids_after(tenant, start)
    got = await pool.collect(start, expected, 5)
    ok, failed = statuses_ok(sent)
    seconds = (got.last_received_ns - sent["started_ns"]) / 1e9
    return {
        "subscribers": pool.held,
        "writes": ok,
        "failed_writes": failed,
        "deliveries": got.deliveries,
        "deliveries_per_s": round(got.deliveries / seconds) if seconds > 0 else None,
        "first_write_to_last_delivery_s": round(seconds, 3),
        **latency_summary_ms(got.latencies),
        "lost": got.lost + (ok - len(expected)) * pool.held,
        "behind_at_end": behind,
        "server_cores": window.cores("server"),
        "server_us_per_delivery": round(window.cpu_seconds("server") / max(1, got.deliveries) * 1e6, 2),
        "generator_cores": window.cores("generator"),
        "generator_busiest_proc": window.busiest("generator"),
        "writer_cores": window.cores("writer"),
    }


async def run(ctx: Context) -> Result:
    started = time.monotonic()
    result = Result("fanout")
    async with ctx.syncstream("fanout") as server:
        tenant = await make_tenant(server.url)
        pool = SubscriberPool(ctx.options.gen_procs)
        writer = Writer()
        try:
            await writer.configure(HOST, server.port, tenant.org_slug, tenant.token)
            for size in ctx.plan.fanout_sizes:
                opening = await open_subscribers(pool, server, tenant, size)
                row = await fanout_round(ctx, server, tenant, pool, writer, f"fanout-{size}")
                result.rows.append({**row, **opening})
        finally:
            await pool.stop()
            await writer.stop()
    ceiling = await ceiling_fanout(ctx, ctx.plan.fanout_sizes)
    for row in result.rows:
        reference = ceiling[fanout_key(row["subscribers"])]
        row["ceiling_deliveries_per_s"] = reference["deliveries_per_s"]
        row["ratio_to_ceiling"] = ratio(row["deliveries_per_s"], reference["deliveries_per_s"])
        row["ceiling_us_per_delivery"] = reference["server_us_per_delivery"]
        result.targets.append(
            Target(f"fanout {row['subscribers']} deliveries/s vs ceiling", row["ratio_to_ceiling"], TARGET_RATIO, True)
        )
        result.targets.append(Target(f"fanout {row['subscribers']} lost", row["lost"], 0, False))
    result.notes.append(
        f"burst of {ctx.plan.burst} creates, {ctx.plan.burst_concurrency} in flight, org admin subscribers "
        f"with offset=now; {ctx.options.gen_procs} subscriber processes"
    )
    if ctx.profiles:
        result.notes += [f"profile {k}: {v}" for k, v in ctx.profiles.items() if k.startswith("fanout")]
    result.seconds = time.monotonic() - started
    return result
