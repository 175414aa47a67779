"""steady: subscribers under a steady write rate; latency and, above all, nothing lost.

Each configuration (subscribers, writes per second) runs for the plan's duration with creates paced
open-loop. Afterwards every subscriber's received activity IDs are compared with the organization's log
(read back in JSON mode): anything missing, duplicated or out of order counts.
"""

from __future__ import annotations

from bench.context import Context
from bench.fleet import fleet
from bench.loadgen import failures_text, statuses_ok
from bench.plan import WARMUP_WRITES
from bench.report import Result, Target
from bench.scenarios.ceiling import ceiling_steady, steady_key
from bench.setup import activity_ids_after, newest_id
from bench.stats import latency_summary_ms, ratio

P99_TARGET_MS = 50.0


async def run(ctx: Context, result: Result) -> None:
    seconds = ctx.plan.steady_seconds
    shared = await fleet(ctx)
    server, pool = shared.server, shared.pool
    assert server is not None
    assert pool is not None
    for subscribers, rate in ctx.plan.steady:
        group = shared.steady_group(subscribers)
        await shared.ensure(group, subscribers)
        tenant = await shared.org(group)
        writer = await shared.writer_for(group)
        await writer.burst(WARMUP_WRITES, WARMUP_WRITES, 30)
        start = await newest_id(tenant)
        await pool.wait_for(group, start, 30)
        await pool.reset(group)
        async with ctx.window(
            f"steady-{subscribers}at{rate:g}",
            profile_pid=server.pid,
            server=server.all_pids(),
            generator=pool.pids,
            writer=[writer.pid],
        ) as window:
            sent = await writer.paced(rate, seconds)
            target = await newest_id(tenant)
            behind = await pool.wait_for(group, target, 15)
        expected = await activity_ids_after(tenant, start)
        got = await pool.collect(group, start, expected, 5)
        ok, failed = statuses_ok(sent)
        result.rows.append(
            {
                "subscribers": subscribers,
                "writes_per_s": rate,
                "seconds": seconds,
                "writes": ok,
                "failed_writes": failed,
                "write_failures": failures_text(sent),
                "late_sends": sent["late"],
                "deliveries": got.deliveries,
                **latency_summary_ms(got.latencies),
                "lost": got.lost + max(0, ok - len(expected)) * subscribers,
                "duplicated": got.duplicated,
                "out_of_order_subs": got.out_of_order,
                "complete_subs": got.complete,
                "behind_at_end": behind,
                "dropped_streams": got.closed,
                "server_cores": window.cores("server"),
                "server_us_per_delivery": round(
                    window.cpu_seconds("server") / max(1, got.deliveries) * 1e6, 2
                ),
                "generator_cores": window.cores("generator"),
                "writer_cores": window.cores("writer"),
                "server_streams_held": pool.total,
                **window.load_columns(),
            }
        )
        row = result.rows[-1]
        # The ceiling under the same load right after, in the same machine state.
        reference = (await ceiling_steady(ctx, ((subscribers, rate),), fresh=True))[
            steady_key(subscribers, rate)
        ]
        row["ceiling_p99_ms"] = reference["p99_ms"]
        row["p99_vs_ceiling"] = ratio(row["p99_ms"], reference["p99_ms"])
        row["ceiling_us_per_delivery"] = reference["server_us_per_delivery"]
        row["cpu_efficiency_vs_ceiling"] = ratio(
            reference["server_us_per_delivery"], row["server_us_per_delivery"]
        )
        row["ceiling_other_cores"] = reference["other_cores"]
    for row in result.rows:
        case = f"steady {row['subscribers']} @ {row['writes_per_s']:g}/s"
        result.targets.append(Target(f"{case} p99", row["p99_ms"], P99_TARGET_MS, False, " ms"))
        result.targets.append(Target(f"{case} lost", row["lost"], 0, False))
    result.notes.append(
        "cpu_efficiency_vs_ceiling = ceiling CPU per delivery / server CPU per delivery (1.0 = as cheap as "
        "the framework-free server); the server's figure includes handling the creates"
    )
