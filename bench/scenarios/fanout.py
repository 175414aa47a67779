"""fanout: N subscribers on one organization stream, then a burst of creates through the API.

Per size: deliveries per second (deliveries over the time from the first create sent to the last frame
received), that time, latency (create sent → frame received, both on ``CLOCK_MONOTONIC``), lost messages,
and CPU of the server, of the subscriber processes and of the writer. Then the same as a ratio to the
ceiling measured in this run.
"""

from __future__ import annotations

from bench.context import Context
from bench.fleet import fanout_group, fleet
from bench.loadgen import SubscriberPool, Writer, statuses_ok
from bench.plan import WARMUP_WRITES
from bench.report import Result, Row, Target
from bench.scenarios.ceiling import ceiling_fanout, fanout_key
from bench.server import Server
from bench.setup import Tenant, activity_ids_after, newest_id
from bench.stats import latency_summary_ms, ratio

TARGET_RATIO = 0.5
#: A row is flagged when something else used more than this many cores during either measurement.
DISTURBED_CORES = 0.3


async def fanout_round(
    ctx: Context,
    server: Server,
    tenant: Tenant,
    pool: SubscriberPool,
    group: str,
    writer: Writer,
    label: str,
) -> Row:
    """One measured burst of creates to ``tenant``'s organization, whose subscribers are ``group``."""
    plan = ctx.plan
    await writer.burst(WARMUP_WRITES, WARMUP_WRITES, 30)
    start = await newest_id(tenant)
    await pool.wait_for(group, start, 30)
    await pool.reset(group)
    async with ctx.window(
        label, profile_pid=server.pid, server=server.all_pids(), generator=pool.pids, writer=[writer.pid]
    ) as window:
        sent = await writer.burst(plan.burst, plan.burst_concurrency, 120)
        target = await newest_id(tenant)
        behind = await pool.wait_for(group, target, 90)
    expected = await activity_ids_after(tenant, start)
    got = await pool.collect(group, start, expected, 5)
    ok, failed = statuses_ok(sent)
    seconds = (got.last_received_ns - sent["started_ns"]) / 1e9
    subscribers = pool.held[group]
    return {
        "subscribers": subscribers,
        "writes": ok,
        "failed_writes": failed,
        "deliveries": got.deliveries,
        "deliveries_per_s": round(got.deliveries / seconds) if seconds > 0 else None,
        "first_write_to_last_delivery_s": round(seconds, 3),
        "writes_done_s": round((sent["finished_ns"] - sent["started_ns"]) / 1e9, 3),
        **latency_summary_ms(got.latencies),
        "lost": got.lost + max(0, ok - len(expected)) * subscribers,
        "behind_at_end": behind,
        "server_cores": window.cores("server"),
        "server_us_per_delivery": round(window.cpu_seconds("server") / max(1, got.deliveries) * 1e6, 2),
        "generator_cores": window.cores("generator"),
        "generator_busiest_proc": window.busiest("generator"),
        "writer_cores": window.cores("writer"),
        **window.load_columns(),
    }


async def run(ctx: Context, result: Result) -> None:
    shared = await fleet(ctx)
    assert shared.server is not None
    assert shared.pool is not None
    for size in ctx.plan.fanout_sizes:
        group = fanout_group(size)
        opening = await shared.ensure(group, size)
        writer = await shared.writer_for(group)
        tenant = await shared.org(group)
        row = await fanout_round(ctx, shared.server, tenant, shared.pool, group, writer, f"fanout-{size}")
        row["server_streams_held"] = shared.pool.total
        # The ceiling right after, on the same machine in the same state: a shared machine's load
        # moves the ceiling (which saturates both cores with its subscribers) more than the server.
        reference = (await ceiling_fanout(ctx, (size,), fresh=True))[fanout_key(size)]
        row["ceiling_deliveries_per_s"] = reference["deliveries_per_s"]
        row["ratio_to_ceiling"] = ratio(row["deliveries_per_s"], reference["deliveries_per_s"])
        row["ceiling_us_per_delivery"] = reference["server_us_per_delivery"]
        # CPU per delivery moves much less with the machine's load than deliveries/s does.
        row["cpu_efficiency_vs_ceiling"] = ratio(
            reference["server_us_per_delivery"], row["server_us_per_delivery"]
        )
        row["ceiling_other_cores"] = reference["other_cores"]
        row["disturbed"] = max(row["other_cores"], reference["other_cores"]) > DISTURBED_CORES
        result.rows.append({**row, **opening})
    for row in result.rows:
        result.targets.append(
            Target(
                f"fanout {row['subscribers']} deliveries/s vs ceiling",
                row["ratio_to_ceiling"],
                TARGET_RATIO,
                True,
            )
        )
        result.targets.append(Target(f"fanout {row['subscribers']} lost", row["lost"], 0, False))
    result.notes.append(
        f"burst of {ctx.plan.burst} creates, {ctx.plan.burst_concurrency} in flight; subscribers are the "
        f"org's admin, offset=now; {ctx.options.gen_procs} subscriber processes; server_streams_held "
        "counts every stream the server held (other groups idle on other organizations)"
    )
    result.notes += [f"profile {k}: {v}" for k, v in ctx.profiles.items() if k.startswith("fanout")]
