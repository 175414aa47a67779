"""A client of the database that knows nothing of syncstream: what every capture test writes with."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime
from typing import Any

import asyncpg


class Plain:
    """Plain ``sqlite3`` or ``asyncpg``, one connection per transaction, as another service would write."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.sqlite = url.startswith("sqlite")

    async def run(self, *statements: tuple[str, tuple[Any, ...]], rollback: bool = False) -> None:
        """Run ``statements`` in one transaction (``?`` placeholders, rewritten for asyncpg)."""
        if self.sqlite:
            await asyncio.to_thread(self._sqlite, statements, rollback)
            return
        conn = await asyncpg.connect(self.url)
        try:
            tx = conn.transaction()
            await tx.start()
            for sql, args in statements:
                await conn.execute(dollars(sql), *args)
            await (tx.rollback() if rollback else tx.commit())
        finally:
            await conn.close()

    def _sqlite(self, statements: tuple[tuple[str, tuple[Any, ...]], ...], rollback: bool) -> None:
        conn = sqlite3.connect(self.url.removeprefix("sqlite:///"), isolation_level=None, timeout=30)
        try:
            conn.execute("BEGIN IMMEDIATE")
            for sql, args in statements:
                conn.execute(sql, args)
            conn.execute("ROLLBACK" if rollback else "COMMIT")
        finally:
            conn.close()

    def now(self) -> Any:
        """The current time as this database's driver takes a timestamp parameter."""
        moment = datetime.now(UTC)
        return moment.replace(tzinfo=None).isoformat(" ") if self.sqlite else moment


def dollars(sql: str) -> str:
    """``?`` placeholders as asyncpg's ``$1``, ``$2``, ..."""
    parts = sql.split("?")
    return "".join(p + (f"${i + 1}" if i < len(parts) - 1 else "") for i, p in enumerate(parts))
