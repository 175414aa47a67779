"""What a capture trigger costs per row, without a server: ``python -m bench.capture_cost``.

A throw-away SQLite file and PostgreSQL database with syncstream's schema and the built-in
attachment type. In one transaction each, 10,000 rows are inserted, updated and deleted by a
plain connection, with the triggers off and on, alternately, five times; the best of each is
kept (the machine is shared: the minimum is the least disturbed). SQLite runs in this process,
so its figure is this process's CPU time; PostgreSQL's is the wall time of each statement.
"""

from __future__ import annotations

import asyncio
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
from sqlalchemy import insert

from bench.server import POSTGRES_BENCH_URL
from syncstream._capture import set_capture
from syncstream.db.engine import Database
from syncstream.db.migrate import upgrade
from syncstream.db.schema import Organization
from syncstream.modules.attachments.entity import ATTACHMENT

ROWS = 10_000
ROUNDS = 5
INSERT = (
    "INSERT INTO attachments (id, organization_id, name, size, created_by, created_at, updated_at) "
    "VALUES ({}, 'org', 'n', 1, 'bench', {}, {})"
)
STEPS = {
    "insert": None,
    "update": "UPDATE attachments SET size = size + 1",
    "delete": "DELETE FROM attachments",
}


def _sqlite_round(path: str) -> dict[str, float]:
    conn = sqlite3.connect(path, isolation_level=None)
    now = datetime.now(UTC).replace(tzinfo=None).isoformat(" ")
    spent: dict[str, float] = {}
    try:
        for step, sql in STEPS.items():
            started = time.process_time()
            conn.execute("BEGIN IMMEDIATE")
            if sql is None:
                rows = [(f"a{n}", now, now) for n in range(ROWS)]
                conn.executemany(INSERT.format("?", "?", "?"), rows)
            else:
                conn.execute(sql)
            conn.execute("COMMIT")
            spent[step] = time.process_time() - started
    finally:
        conn.close()
    return spent


async def _postgres_round(url: str) -> dict[str, float]:
    conn = await asyncpg.connect(url)
    now = datetime.now(UTC)
    spent: dict[str, float] = {}
    try:
        for step, sql in STEPS.items():
            started = time.perf_counter()
            async with conn.transaction():
                if sql is None:
                    rows = [(f"a{n}", now) for n in range(ROWS)]
                    await conn.executemany(INSERT.format("$1", "$2", "$2"), rows)
                else:
                    await conn.execute(sql)
            spent[step] = time.perf_counter() - started
    finally:
        await conn.close()
    return spent


async def _measure(
    url: str, one_round: Callable[[], Awaitable[dict[str, float]]]
) -> dict[str, dict[str, float]]:
    database = Database.connect(url, pool_size=2)
    best: dict[str, dict[str, float]] = {"off": {}, "on": {}}
    try:
        await upgrade(database)
        async with database.writer.begin() as conn:  # the rows' organization
            await conn.execute(
                insert(Organization).values(id="org", name="o", slug="o", created_at=datetime.now(UTC))
            )
        for _ in range(ROUNDS):
            for flag in ("off", "on"):
                await set_capture(database, [ATTACHMENT] if flag == "on" else [])
                for step, seconds in (await one_round()).items():
                    best[flag][step] = min(best[flag].get(step, seconds), seconds)
    finally:
        await database.dispose()
    return best


def _report(name: str, best: dict[str, dict[str, float]]) -> None:
    for step in STEPS:
        off, on = best["off"][step] / ROWS * 1e6, best["on"][step] / ROWS * 1e6
        print(
            f"{name:10} {step:7} off {off:6.1f} us/row   on {on:6.1f} us/row   trigger {on - off:6.1f} us/row"
        )


async def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = str(Path(folder) / "capture.db")
        best = await _measure(f"sqlite:///{path}", lambda: asyncio.to_thread(_sqlite_round, path))
    _report("sqlite", best)
    name = f"syncstream_capture_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(POSTGRES_BENCH_URL.rsplit("/", 1)[0] + "/postgres")
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        url = POSTGRES_BENCH_URL.rsplit("/", 1)[0] + "/" + name
        _report("postgresql", await _measure(url, lambda: _postgres_round(url)))
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
