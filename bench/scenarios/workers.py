"""workers: the same fan-out burst and write load with one and with two server processes.

Several processes need a bus that crosses them (Redis here) and a shared database (PostgreSQL, whose
writes take the ordering advisory lock). Subscribers spread over the workers as the kernel hands out
accepted connections; the spread is reported.
"""

from __future__ import annotations

from bench import procstat
from bench.context import Context
from bench.loadgen import SubscriberPool, Writer, failures_text, latencies_of, statuses_ok
from bench.report import Result
from bench.scenarios.fanout import fanout_round
from bench.server import HOST, REDIS_BUS_URL
from bench.setup import make_tenant
from bench.stats import latency_summary_ms

GROUP = "workers"
#: Streams opened at once per subscriber process. Each open holds a pooled database connection for a
#: moment; PostgreSQL's max_connections (100) is shared by every worker's pool (20 + 20 overflow each).
OPEN_CONCURRENCY = 8
OPEN_WITHIN = 120.0


async def run(ctx: Context, result: Result) -> None:
    plan = ctx.plan
    for workers in sorted({1, max(2, ctx.options.workers)}):
        name = f"workers-{workers}"
        async with ctx.syncstream(
            name, database="postgres", workers=workers, bus_url=REDIS_BUS_URL
        ) as server:
            tenant = await make_tenant(server.url)
            pool = SubscriberPool(ctx.options.gen_procs)
            writer = Writer()
            try:
                await writer.configure(HOST, server.port, tenant.org_slug, tenant.token)
                baseline = {pid: procstat.socket_count(pid) for pid in server.worker_pids()}
                path = tenant.stream_path + "?offset=now&live=sse"
                opened = await pool.open(
                    GROUP,
                    HOST,
                    server.port,
                    path,
                    tenant.token,
                    plan.workers_subscribers,
                    OPEN_WITHIN,
                    concurrency=OPEN_CONCURRENCY,
                )
                if opened["failed"]:
                    raise RuntimeError(f"{opened['failed']} streams failed to open: {opened['failures']}")
                spread = [procstat.socket_count(pid) - n for pid, n in baseline.items()]
                fanout = await fanout_round(ctx, server, tenant, pool, GROUP, writer, f"{name}-fanout")
                await pool.stop()
                async with ctx.window(
                    f"{name}-writes", server=server.all_pids(), writer=[writer.pid]
                ) as window:
                    report = await writer.closed_loop(plan.writes_clients, plan.workers_write_seconds)
            finally:
                await pool.stop()
                await writer.stop()
        ok, failed = statuses_ok(report)
        seconds = (report["finished_ns"] - report["started_ns"]) / 1e9
        write_latency = latency_summary_ms(latencies_of(report))
        result.rows.append(
            {
                "workers": workers,
                "subscribers": fanout["subscribers"],
                "subscribers_per_worker": "/".join(str(n) for n in spread),
                "opens_per_s": round(plan.workers_subscribers / opened["seconds"]),
                "deliveries_per_s": fanout["deliveries_per_s"],
                "fanout_p50_ms": fanout["p50_ms"],
                "fanout_p99_ms": fanout["p99_ms"],
                "lost": fanout["lost"],
                "fanout_server_cores": fanout["server_cores"],
                "creates_per_s": round(ok / seconds),
                "failed_writes": failed,
                "write_failures": failures_text(report),
                "write_p99_ms": write_latency["p99_ms"],
                "writes_server_cores": window.cores("server"),
                "writes_other_cores": window.other_cores,
                "fanout_other_cores": fanout["other_cores"],
            }
        )
    result.notes.append(
        f"PostgreSQL database, Redis bus, {plan.writes_clients} write clients; subscribers_per_worker counts "
        f"each worker's sockets opened by the subscribers; streams opened {OPEN_CONCURRENCY} at a time per "
        "subscriber process (more overflows PostgreSQL's max_connections with two workers: 503 unavailable)"
    )
