"""``python -m bench.session_recheck [--database-url URL] [--reads 2000]``

What a process that is one of several pays per authenticated request to make sign-out effective
everywhere at once: re-reading the cached caller's session row (a pool checkout and one primary-key
SELECT), next to what a full caller load (no cache at all: session, user and memberships) costs.
In-process against a fresh database (SQLite in a temporary directory unless ``--database-url``,
which must name a throw-away database: the schema is created there, and a user and a session);
the median of 5 rounds. Figures in docs/deployment.md.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from sqlalchemy import text

from syncstream.auth.sessions import authenticate, session_last_used
from syncstream.db.engine import Database
from syncstream.db.migrate import upgrade


async def per_call_us(reads: int, call: Callable[[], Awaitable[object]]) -> float:
    rounds = []
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(reads):
            await call()
        rounds.append((time.perf_counter() - started) / reads * 1e6)
    return statistics.median(rounds)


async def measure(database_url: str, reads: int) -> None:
    database = Database.connect(database_url, pool_size=4, serial=True)
    try:
        await upgrade(database)
        async with database.writer.begin() as conn:
            await conn.execute(text("DELETE FROM users WHERE id = 'usr_bench'"))
            await conn.execute(
                text(
                    "INSERT INTO users (id, email, name, password_hash, role, created_at)"
                    " VALUES ('usr_bench', 'bench@example.test', 'B', 'x', 'user', CURRENT_TIMESTAMP)"
                )
            )
            await conn.execute(
                text(
                    "INSERT INTO sessions (id, user_id, token_hash, created_at, last_used_at)"
                    " VALUES ('ses_bench', 'usr_bench', 'bench-hash', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                )
            )

        async def recheck() -> object:
            async with database.reader.connect() as conn:
                return await session_last_used(conn, "ses_bench")

        async def full_load() -> object:
            async with database.reader.connect() as conn:
                return await authenticate(conn, "bench-hash")

        print(f"{database.dialect}: re-read {await per_call_us(reads, recheck):.0f} µs per request; ", end="")
        print(f"a full caller load {await per_call_us(reads, full_load):.0f} µs")
    finally:
        await database.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[1])
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--reads", type=int, default=2000)
    args = parser.parse_args()
    url = args.database_url or f"sqlite:///{Path(tempfile.mkdtemp()) / 'recheck.db'}"
    asyncio.run(measure(url, args.reads))


if __name__ == "__main__":
    main()
