"""opens and storm: how fast one process opens organization streams, and how it survives a restart.

``opens`` opens fresh streams on a server of their own (so no other stream is held beside them), first
at ``offset=now``, then resuming with ``Last-Event-ID`` a few activities back (each catches up on them);
each in a measured window: opens per second and server ms of CPU per open.

``storm`` opens N streams at ``offset=now``, writes a few activities (the last of them right before the
restart, so some followers have them and some do not), restarts the server (``SIGTERM``, then the same
command on the same port and database) and lets every follower resume with ``Last-Event-ID`` at once,
while more activities are written. Reported: how long until every follower is live again (its new
connection's ``offset`` frame), from the drop and from the new server's first accept; then each
follower's IDs are compared with the log's: nothing lost, nothing repeated, in order.
"""

from __future__ import annotations

import asyncio
import time
from array import array
from typing import Any

from bench import procstat
from bench.children import Child, call_all, call_each
from bench.context import Context
from bench.loadgen import OPEN_CONCURRENCY, Writer, split, statuses_ok
from bench.profiling import Recorder, summarize
from bench.report import Result, Target
from bench.server import HOST, Server
from bench.setup import Tenant, activity_ids_after, make_tenant, newest_id
from bench.stats import percentile
from bench.storm import StormWorker
from bench.subscribers import SubscriberWorker, sse_request

TARGET_OPENS_PER_S = 2000.0
TARGET_MS_PER_OPEN = 0.5
TARGET_LIVE_SECONDS = 5.0
#: Activities each resuming stream of ``opens`` catches up on.
RESUME_BEHIND = 3
WRITES_BEFORE = 5
WRITES_DURING = 20
WARM_STREAMS = 100


async def _write(writer: Writer, count: int) -> None:
    report = await writer.burst(count, 4, 60)
    _, failed = statuses_ok(report)
    if failed:
        raise RuntimeError(f"{failed} of {count} writes failed: {report['statuses']}")


def _open_request(server: Server, tenant: Tenant, last_event_id: int | None) -> bytes:
    if last_event_id is None:
        return sse_request(HOST, server.port, tenant.stream_path + "?offset=now&live=sse", tenant.token)
    request = sse_request(HOST, server.port, tenant.stream_path + "?live=sse", tenant.token)
    return request[:-2] + b"Last-Event-ID: %d\r\n\r\n" % last_event_id


async def run_opens(ctx: Context, result: Result) -> None:
    count = ctx.plan.opens_streams
    children = [Child(SubscriberWorker, f"opens-{i}") for i in range(ctx.options.gen_procs)]
    writer = Writer()
    try:
        async with ctx.syncstream("opens") as server:
            tenant = await make_tenant(server.url)
            await writer.configure(HOST, server.port, tenant.org_slug, tenant.token)
            await _open_all(children, "warm", server.port, _open_request(server, tenant, None), WARM_STREAMS)
            await _write(writer, RESUME_BEHIND)
            behind = await newest_id(tenant) - RESUME_BEHIND
            for mode, last_event_id in (
                ("offset=now", None),
                (f"Last-Event-ID, {RESUME_BEHIND} behind", behind),
            ):
                request = _open_request(server, tenant, last_event_id)
                async with ctx.window(
                    f"opens-{'now' if last_event_id is None else 'resume'}",
                    profile_pid=server.pid,
                    server=[server.pid],
                    generator=[c.pid for c in children],
                ) as window:
                    seconds = await _open_all(children, mode, server.port, request, count)
                result.rows.append(
                    {
                        "open": mode,
                        "streams": count,
                        "opens_per_s": round(count / seconds),
                        "server_ms_per_open": round(window.cpu_seconds("server") / count * 1e3, 3),
                        "server_cores": window.cores("server"),
                        "generator_cores": window.cores("generator"),
                        **window.load_columns(),
                    }
                )
                result.targets.append(
                    Target(f"opens/s ({mode})", round(count / seconds), TARGET_OPENS_PER_S, True)
                )
                result.targets.append(
                    Target(
                        f"server CPU per open ({mode})",
                        round(window.cpu_seconds("server") / count * 1e3, 3),
                        TARGET_MS_PER_OPEN,
                        False,
                        " ms",
                    )
                )
                await call_all(children, "close", 30)
                await asyncio.sleep(1)  # let the server wind the closed streams down
    finally:
        await writer.stop()
        for child in children:
            await child.stop()
    result.notes.append(
        f"{count} streams each way on a server of their own ({WARM_STREAMS} warm-up streams first); "
        f"{OPEN_CONCURRENCY} opening at once per generator process"
    )


async def _open_all(children: list[Child], group: str, port: int, request: bytes, count: int) -> float:
    started = time.monotonic()
    replies = await call_each(
        children,
        "open",
        250,
        [
            {"group": group, "host": HOST, "port": port, "request": request, "count": n}
            | {"concurrency": OPEN_CONCURRENCY, "within": 240.0}
            for n in split(count, len(children))
        ],
    )
    failed = sum(r["failed"] for r in replies)
    if failed:
        raise RuntimeError(f"{failed} of {count} streams failed to open: {replies[0]['failures']}")
    return time.monotonic() - started


async def run_storm(ctx: Context, result: Result) -> None:
    count = ctx.plan.storm_streams
    children = [Child(StormWorker, f"storm-{i}") for i in range(ctx.options.gen_procs)]
    writer = Writer()
    try:
        async with ctx.syncstream("storm") as server:
            tenant = await make_tenant(server.url)
            await writer.configure(HOST, server.port, tenant.org_slug, tenant.token)
            start = await newest_id(tenant)
            replies = await call_each(
                children,
                "open",
                250,
                [
                    {"host": HOST, "port": server.port, "path": tenant.stream_path, "token": tenant.token}
                    | {"count": n, "concurrency": OPEN_CONCURRENCY, "within": 240.0}
                    for n in split(count, len(children))
                ],
            )
            opened = sum(r["opened"] for r in replies)
            if opened < count:
                raise RuntimeError(
                    f"{count - opened} of {count} streams failed to open: {replies[0]['failures']}"
                )
            await call_all(children, "arm", 30, within=120.0)
            # The last writes are answered but not yet delivered everywhere when the server stops.
            await _write(writer, WRITES_BEFORE)
            stopping = time.monotonic()
            await server.stop()
            stopped = time.monotonic()
            await server.start()
            ready = time.monotonic_ns()
            cpu_before = _cpu(server)
            # With --profile, the restarted server from its first answer (py-spy takes a
            # moment to attach: the first resumes go unrecorded, and are slowed a little).
            recorder = _recorder(ctx, server, "storm")
            writes = asyncio.create_task(_write(writer, WRITES_DURING))
            progress = await _until_live(children, count, 60.0)
            cpu = _cpu(server) - cpu_before
            if recorder is not None:
                _summarize(ctx, recorder, "storm")
            await writes
            await _write(writer, 1)  # the end marker
            expected = await activity_ids_after(tenant, start)
            checked = await call_all(children, "collect", 90, expected=expected, within=60.0)
    finally:
        await writer.stop()
        for child in children:
            await child.stop()
    _report_storm(result, count, progress, checked, expected, ready, stopped - stopping, cpu)


def _recorder(ctx: Context, server: Server, name: str) -> Recorder | None:
    if not ctx.options.profile:
        return None
    return Recorder(server.pid, ctx.results_dir / f"{name}.pyspy.txt")


def _summarize(ctx: Context, recorder: Recorder, name: str) -> None:
    raw = recorder.stop()
    text_path = raw.with_suffix(".summary.txt")
    text_path.write_text(summarize(raw).text() + "\n")
    ctx.profiles[name] = str(text_path)


def _cpu(server: Server) -> float:
    return procstat.cpu_seconds(server.pid)


async def _until_live(children: list[Child], count: int, within: float) -> list[dict[str, Any]]:
    deadline = time.monotonic() + within
    while True:
        replies = await call_all(children, "progress", 30)
        live = sum(r["live_again"] for r in replies)
        if live >= count or time.monotonic() > deadline:
            return replies
        await asyncio.sleep(0.05)


def _report_storm(
    result: Result,
    count: int,
    progress: list[dict[str, Any]],
    checked: list[dict[str, Any]],
    expected: list[int],
    ready_ns: int,
    stop_seconds: float,
    cpu_seconds: float,
) -> None:
    live = sorted(t for r in progress for t in array("q", r["live_ns"]))
    first_drop = min(r["first_drop_ns"] for r in progress if r["first_drop_ns"]) if live else 0
    last_live = max(r["last_live_ns"] for r in progress)
    live_again = sum(r["live_again"] for r in progress)
    statuses: dict[str, int] = {}
    for r in checked:
        for status, n in r["statuses"].items():
            statuses[status] = statuses.get(status, 0) + n
    after_ready = (last_live - ready_ns) / 1e9 if live_again else None
    after_drop = (last_live - first_drop) / 1e9 if live_again else None
    sums = {
        k: sum(r[k] for r in checked)
        for k in ("complete", "lost", "duplicated", "unexpected", "out_of_order")
    }
    result.rows.append(
        {
            "streams": count,
            "dropped": sum(r["dropped"] for r in progress),
            "live_again": live_again,
            "server_stop_s": round(stop_seconds, 2),
            "all_live_after_ready_s": None if after_ready is None else round(after_ready, 2),
            "all_live_after_drop_s": None if after_drop is None else round(after_drop, 2),
            "p50_live_after_ready_s": round((percentile(live, 50) - ready_ns) / 1e9, 2) if live else None,
            "server_ms_per_resume": round(cpu_seconds / max(1, live_again) * 1e3, 3),
            "activities": len(expected),
            **sums,
            "attempts": sum(r["attempts"] for r in checked),
        }
    )
    result.targets.append(
        Target("every stream live again after a restart", after_ready, TARGET_LIVE_SECONDS, False, " s")
    )
    result.targets.append(Target("streams resumed", live_again, count, True))
    lost = sums["lost"] + sums["duplicated"] + sums["unexpected"] + sums["out_of_order"]
    result.targets.append(Target("activities lost, repeated or out of order", lost, 0, False))
    result.notes.append(
        f"statuses of every open and resume: {statuses}; 'after ready': from the restarted server's first "
        "healthy answer; 'after drop': from the first stream the stopping server dropped (the restart "
        "itself included); server CPU per resume counted from the restart's healthy answer"
    )
