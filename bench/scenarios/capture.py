"""capture: what change capture (docs/capture.md) costs, on SQLite and PostgreSQL.

Per database, with ``SYNCSTREAM_CAPTURE`` off then on: API creates/s (the ``writes`` scenario's
closed loop), and external writes/s: plain connections (sqlite3, asyncpg; no syncstream code)
inserting one attachment per transaction in a closed loop. With capture on, every external
write must be in the log afterwards (checked: ``captured`` equals ``external_writes``).
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
import uuid
from datetime import UTC, datetime

import asyncpg

from bench.context import Context
from bench.report import Result, Row
from bench.scenarios.writes import measure_writes
from bench.setup import make_tenant

#: Plain writers: SQLite has one writer at a time (more would only wait on its lock).
CLIENTS = {"sqlite": 1, "postgres": 8}
_COLUMNS = "INSERT INTO attachments (id, organization_id, name, created_by, created_at, updated_at) "
SQLITE_INSERT = _COLUMNS + "VALUES (?, ?, 'external', 'bench', ?, ?)"
POSTGRES_INSERT = _COLUMNS + "VALUES ($1, $2, 'external', 'bench', $3, $3)"


async def _sqlite_loop(path: str, org: str, until: float) -> int:
    def loop() -> int:
        conn = sqlite3.connect(path, isolation_level=None, timeout=30)
        sql = SQLITE_INSERT
        done = 0
        try:
            while time.monotonic() < until:
                now = datetime.now(UTC).replace(tzinfo=None).isoformat(" ")
                conn.execute("BEGIN IMMEDIATE")
                conn.execute(sql, (f"ext_{uuid.uuid4().hex[:20]}", org, now, now))
                conn.execute("COMMIT")
                done += 1
        finally:
            conn.close()
        return done

    return await asyncio.to_thread(loop)


async def _postgres_loop(url: str, org: str, until: float) -> int:
    conn = await asyncpg.connect(url)
    sql = POSTGRES_INSERT
    done = 0
    try:
        while time.monotonic() < until:
            await conn.execute(sql, f"ext_{uuid.uuid4().hex[:20]}", org, datetime.now(UTC))
            done += 1
    finally:
        await conn.close()
    return done


async def _bulk_update_us_per_row(url: str, database: str, org: str) -> float:
    """One statement updating every row the loop wrote, in one transaction: the trigger's own
    cost per row (no lock waits, no commit per row)."""
    sql = "UPDATE attachments SET size = coalesce(size, 0) + 1 WHERE organization_id = "
    if database == "sqlite":

        def run() -> tuple[int, float]:
            conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None, timeout=30)
            try:
                started = time.perf_counter()
                conn.execute("BEGIN IMMEDIATE")
                rows = conn.execute(sql + "?", (org,)).rowcount
                conn.execute("COMMIT")
                return rows, time.perf_counter() - started
            finally:
                conn.close()

        rows, seconds = await asyncio.to_thread(run)
    else:
        pg = await asyncpg.connect(url)
        try:
            started = time.perf_counter()
            status = await pg.execute(sql + "$1", org)
            seconds = time.perf_counter() - started
            rows = int(status.split()[-1])
        finally:
            await pg.close()
    return round(seconds / max(1, rows) * 1e6, 1)


async def _captured(url: str, database: str) -> int:
    query = (
        "SELECT count(*) FROM activities "
        "WHERE entity_type = 'attachment' AND user_id IS NULL AND action = 'create'"
    )
    if database == "sqlite":
        conn = sqlite3.connect(url.removeprefix("sqlite:///"))
        try:
            return int(conn.execute(query).fetchone()[0])
        finally:
            conn.close()
    pg = await asyncpg.connect(url)
    try:
        return int(await pg.fetchval(query))
    finally:
        await pg.close()


async def measure_external(ctx: Context, name: str, database: str, capture: bool) -> Row:
    seconds = ctx.plan.writes_seconds
    env = {"SYNCSTREAM_CAPTURE": "on" if capture else "off"}
    async with ctx.syncstream(name, database=database, env=env) as server:
        tenant = await make_tenant(server.url)
        url = server.database_url
        clients = CLIENTS[database]
        until = time.monotonic() + seconds
        if database == "sqlite":
            counts = await asyncio.gather(
                *(_sqlite_loop(url.removeprefix("sqlite:///"), tenant.org_id, until) for _ in range(clients))
            )
        else:
            counts = await asyncio.gather(
                *(_postgres_loop(url, tenant.org_id, until) for _ in range(clients))
            )
        writes = sum(counts)
        bulk_us = await _bulk_update_us_per_row(url, database, tenant.org_id)
        captured = await _captured(url, database)
    return {
        "database": database,
        "capture": "on" if capture else "off",
        "external_clients": clients,
        "external_writes": writes,
        "external_writes_per_s": round(writes / seconds),
        "captured": captured,
        "bulk_update_us_per_row": bulk_us,
    }


async def run(ctx: Context, result: Result) -> None:
    for database in ("sqlite", "postgres"):
        for capture in (False, True):
            flag = "on" if capture else "off"
            env = {"SYNCSTREAM_CAPTURE": flag}
            row = await measure_writes(ctx, f"capture-api-{database}-{flag}", database, env=env)
            row["capture"] = flag
            result.rows.append(row)
            result.rows.append(
                await measure_external(ctx, f"capture-ext-{database}-{flag}", database, capture)
            )
    result.notes.append("external writes: one INSERT per transaction, plain sqlite3 / asyncpg connections")
