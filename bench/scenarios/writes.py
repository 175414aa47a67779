"""writes: creates per second through the API, 32 clients in a closed loop, on SQLite and PostgreSQL."""

from __future__ import annotations

from bench.context import Context
from bench.loadgen import Writer, failures_text, latencies_of, statuses_ok
from bench.report import Result, Row, Target
from bench.server import HOST
from bench.setup import make_tenant
from bench.stats import latency_summary_ms

SQLITE_TARGET = 1000.0


async def measure_writes(
    ctx: Context, name: str, database: str, workers: int | None = None, env: dict[str, str] | None = None
) -> Row:
    plan = ctx.plan
    async with ctx.syncstream(name, database=database, workers=workers, env=env) as server:
        tenant = await make_tenant(server.url)
        writer = Writer()
        try:
            await writer.configure(HOST, server.port, tenant.org_slug, tenant.token)
            await writer.closed_loop(plan.writes_clients, 0.5)  # warm-up
            async with ctx.window(
                name, profile_pid=server.pid, server=server.all_pids(), writer=[writer.pid]
            ) as window:
                report = await writer.closed_loop(plan.writes_clients, plan.writes_seconds)
        finally:
            await writer.stop()
    ok, failed = statuses_ok(report)
    seconds = (report["finished_ns"] - report["started_ns"]) / 1e9
    return {
        "database": database,
        "workers": len(server.worker_pids()) if server.process else (workers or ctx.options.workers),
        "clients": plan.writes_clients,
        "seconds": round(seconds, 2),
        "creates": ok,
        "failed": failed,
        "failures": failures_text(report),
        "creates_per_s": round(ok / seconds),
        **latency_summary_ms(latencies_of(report)),
        "server_cores": window.cores("server"),
        "server_ms_per_create": round(window.cpu_seconds("server") / max(1, ok) * 1e3, 3),
        "writer_cores": window.cores("writer"),
        **window.load_columns(),
    }


async def run(ctx: Context, result: Result) -> None:
    for database in ("sqlite", "postgres"):
        row = await measure_writes(ctx, f"writes-{database}", database)
        row["workers"] = ctx.options.workers
        result.rows.append(row)
    result.targets.append(
        Target("writes on SQLite, creates/s", result.rows[0]["creates_per_s"], SQLITE_TARGET, True)
    )
    result.notes.append("PostgreSQL: every create takes the ordering advisory lock (activities/log.py)")
