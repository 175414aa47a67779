"""ceiling: the framework-free reference server (:mod:`bench.ceiling`) under the fan-out and steady loads.

Measured once per run and cached on the context: ``fanout`` and ``steady`` divide their figures by these.
"""

from __future__ import annotations

from bench.ceiling import CeilingWorker
from bench.children import Child
from bench.context import Context
from bench.loadgen import SubscriberPool
from bench.plan import WARMUP_WRITES
from bench.report import Result, Row
from bench.server import HOST
from bench.stats import latency_summary_ms

OPEN_WITHIN = 90.0
GROUP = "ceiling"


def fanout_key(subscribers: int, coalesce: int = 1) -> str:
    return f"fanout-{subscribers}" + (f"-x{coalesce}" if coalesce > 1 else "")


def steady_key(subscribers: int, rate: float) -> str:
    return f"steady-{subscribers}@{rate:g}"


async def _start(ctx: Context) -> tuple[Child, SubscriberPool, int]:
    ceiling = Child(CeilingWorker, "ceiling")
    pool = SubscriberPool(ctx.options.gen_procs)
    port = int(await ceiling.call("start", 20, host=HOST, port=0))
    return ceiling, pool, port


async def _warm(ceiling: Child, pool: SubscriberPool) -> None:
    warm = await ceiling.call("burst", 30, count=WARMUP_WRITES)
    await pool.wait_for(GROUP, warm["last_id"], 30)
    await pool.reset(GROUP)


async def _burst(ctx: Context, ceiling: Child, pool: SubscriberPool, subscribers: int, coalesce: int) -> Row:
    await _warm(ceiling, pool)
    label = f"ceiling-{fanout_key(subscribers, coalesce)}"
    async with ctx.window(label, server=[ceiling.pid], generator=pool.pids) as window:
        sent = await ceiling.call("burst", 120, count=ctx.plan.burst, coalesce=coalesce)
        behind = await pool.wait_for(GROUP, sent["last_id"], 60)
    expected = list(range(sent["first_id"], sent["last_id"] + 1))
    got = await pool.collect(GROUP, sent["first_id"] - 1, expected, 5)
    seconds = (got.last_received_ns - sent["started_ns"]) / 1e9
    return {
        "case": f"fanout {subscribers}" + (f" ({coalesce} frames/write)" if coalesce > 1 else ""),
        "subscribers": subscribers,
        "deliveries": got.deliveries,
        "deliveries_per_s": round(got.deliveries / seconds) if seconds > 0 else None,
        "first_write_to_last_delivery_s": round(seconds, 3),
        **latency_summary_ms(got.latencies),
        "lost": got.lost + behind,
        "server_cores": window.cores("server"),
        "server_us_per_delivery": round(window.cpu_seconds("server") / max(1, got.deliveries) * 1e6, 2),
        "writes": sent["writes"],
        "generator_cores": window.cores("generator"),
        "generator_busiest_proc": window.busiest("generator"),
        **window.load_columns(),
        "write_loop_s": round((sent["finished_ns"] - sent["started_ns"]) / 1e9, 3),
    }


async def ceiling_fanout(
    ctx: Context, sizes: tuple[int, ...], *, coalesced: bool = False, fresh: bool = False
) -> dict[str, Row]:
    """The ceiling's fan-out rows for ``sizes``: measured now if ``fresh`` or not yet in this run."""
    wanted = [(n, 1) for n in sizes] + ([(sizes[0], 10)] if coalesced else [])
    if fresh:
        for n, c in wanted:
            ctx.ceiling.pop(fanout_key(n, c), None)
    if any(fanout_key(n, c) not in ctx.ceiling for n, c in wanted):
        ceiling, pool, port = await _start(ctx)
        try:
            for n, coalesce in sorted(wanted):
                held = pool.held.get(GROUP, 0)
                if held < n:
                    opened = await pool.open(GROUP, HOST, port, "/stream", None, n - held, OPEN_WITHIN)
                    if opened["failed"]:
                        raise RuntimeError(
                            f"ceiling: {opened['failed']} streams failed: {opened['failures']}"
                        )
                key = fanout_key(n, coalesce)
                if key not in ctx.ceiling:
                    ctx.ceiling[key] = await _burst(ctx, ceiling, pool, n, coalesce)
        finally:
            await pool.stop()
            await ceiling.stop()
    return {fanout_key(n, c): ctx.ceiling[fanout_key(n, c)] for n, c in wanted}


async def ceiling_steady(
    ctx: Context, loads: tuple[tuple[int, float], ...] | None = None, *, fresh: bool = False
) -> dict[str, Row]:
    """The ceiling under each steady load (default: the plan's); measured now if ``fresh`` or not yet."""
    seconds = ctx.plan.steady_seconds
    loads = ctx.plan.steady if loads is None else loads
    for subscribers, rate in loads:
        key = steady_key(subscribers, rate)
        if key in ctx.ceiling and not fresh:
            continue
        ceiling, pool, port = await _start(ctx)
        try:
            opened = await pool.open(GROUP, HOST, port, "/stream", None, subscribers, OPEN_WITHIN)
            if opened["failed"]:
                raise RuntimeError(f"ceiling: {opened['failed']} streams failed: {opened['failures']}")
            await _warm(ceiling, pool)
            async with ctx.window(f"ceiling-{key}", server=[ceiling.pid], generator=pool.pids) as window:
                sent = await ceiling.call("steady", seconds + 30, rate=rate, seconds=seconds)
                behind = await pool.wait_for(GROUP, sent["last_id"], 10)
            expected = list(range(sent["first_id"], sent["last_id"] + 1))
            got = await pool.collect(GROUP, sent["first_id"] - 1, expected, 5)
            ctx.ceiling[key] = {
                "case": f"steady {subscribers} @ {rate:g}/s",
                "subscribers": subscribers,
                "writes_per_s": rate,
                "deliveries": got.deliveries,
                **latency_summary_ms(got.latencies),
                "lost": got.lost + behind,
                "server_cores": window.cores("server"),
                "server_us_per_delivery": round(
                    window.cpu_seconds("server") / max(1, got.deliveries) * 1e6, 2
                ),
                "generator_cores": window.cores("generator"),
                **window.load_columns(),
            }
        finally:
            await pool.stop()
            await ceiling.stop()
    return {steady_key(n, r): ctx.ceiling[steady_key(n, r)] for n, r in loads}


async def run(ctx: Context, result: Result) -> None:
    fanout_rows = await ceiling_fanout(ctx, ctx.plan.fanout_sizes, coalesced=ctx.plan.ceiling_coalesced)
    result.rows.extend(fanout_rows.values())
    steady_rows = await ceiling_steady(ctx)
    result.rows.extend(steady_rows.values())
    result.notes.append(
        "raw uvloop server, no framework; one transport.write per delivery (except the coalesced row); "
        "frames shaped like syncstream's, read by the same subscribers"
    )
