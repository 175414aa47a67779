"""catchup: one client replays a long history (``offset=-1``) over SSE; activities per second.

The history is seeded straight into the SQLite file the server migrated (one transaction, the columns of
``activities`` as ``activities/log.py`` writes them, JSON as text), then one subscriber reads from the start
to the ``offset`` frame.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from datetime import UTC, datetime, timedelta

import orjson

from bench import procstat
from bench.children import Child
from bench.context import Context
from bench.report import Result, Target
from bench.server import HOST, Server
from bench.setup import Tenant, make_tenant
from bench.subscribers import CatchUpWorker, sse_request

TARGET_PER_S = 50_000.0


def seed(database_path: str, tenant: Tenant, count: int) -> None:
    """Insert ``count`` attachment creates for the tenant's organization."""
    base = datetime.now(UTC).replace(tzinfo=None) - timedelta(hours=1)
    rows = []
    for i in range(count):
        at = base + timedelta(milliseconds=i)
        stamp = at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"
        entity_id = f"att_seed{i:012d}"
        data = {
            "id": entity_id,
            "organizationId": tenant.org_id,
            "projectId": None,
            "name": f"seeded-{i}.pdf",
            "url": None,
            "contentType": "application/pdf",
            "size": 1000 + i,
            "createdBy": tenant.user_id,
            "createdAt": stamp,
            "updatedAt": stamp,
        }
        rows.append(
            (
                "attachment.created",
                "create",
                "attachment",
                entity_id,
                tenant.org_id,
                None,
                tenant.user_id,
                None,
                None,
                orjson.dumps(data).decode(),
                None,
                at.strftime("%Y-%m-%d %H:%M:%S.%f"),
            )
        )
    with sqlite3.connect(database_path, timeout=30) as conn:
        conn.executemany(
            "INSERT INTO activities (type, action, entity_type, entity_id, organization_id, project_id, "
            "user_id, changed_keys, tx, data, idempotency_key, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
    conn.close()


async def wait_idle(server: Server, within: float = 30.0) -> None:
    """Wait until the server stops using CPU (its tailer has routed the seeded rows)."""
    deadline = time.monotonic() + within
    last = procstat.cpu_seconds(server.pid)
    while time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        now = procstat.cpu_seconds(server.pid)
        if now - last < 0.02:
            return
        last = now


async def run(ctx: Context, result: Result) -> None:
    count = ctx.plan.catchup_activities
    async with ctx.syncstream("catchup", workers=1) as server:
        tenant = await make_tenant(server.url)
        seed_started = time.monotonic()
        seed(server.database_url.removeprefix("sqlite:///"), tenant, count)
        seed_seconds = time.monotonic() - seed_started
        await wait_idle(server)
        reader = Child(CatchUpWorker, "catchup-reader")
        try:
            request = sse_request(HOST, server.port, tenant.stream_path + "?offset=-1&live=sse", tenant.token)
            async with ctx.window(
                "catchup", profile_pid=server.pid, server=[server.pid], reader=[reader.pid]
            ) as window:
                read = await reader.call("read", 120, host=HOST, port=server.port, request=request, within=90)
        finally:
            await reader.stop()
    per_second = read["frames"] / read["seconds"]
    result.rows.append(
        {
            "activities": count,
            "frames": read["frames"],
            "complete": read["frames"] == count,
            "seconds": round(read["seconds"], 3),
            "first_byte_s": round(read["first_byte_seconds"], 3),
            "activities_per_s": round(per_second),
            "mib_per_s": round(read["bytes"] / read["seconds"] / 1024 / 1024, 1),
            "server_cores": window.cores("server"),
            "server_us_per_activity": round(window.cpu_seconds("server") / max(1, read["frames"]) * 1e6, 2),
            "reader_cores": window.cores("reader"),
            "seed_s": round(seed_seconds, 2),
            **window.load_columns(),
        }
    )
    result.targets.append(Target("catch-up from SQLite, activities/s", round(per_second), TARGET_PER_S, True))
