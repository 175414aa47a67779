"""Throw-away databases: SQLite files and fresh PostgreSQL databases on the test server."""

from __future__ import annotations

import uuid
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from services import require_postgres


def _with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


async def create_postgres_database() -> str:
    """A new, empty database on the PostgreSQL test server (skips or fails when it is absent)."""
    base = await require_postgres()
    name = f"syncstream_test_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(base)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return _with_database(base, name)


async def drop_postgres_database(url: str) -> None:
    base = await require_postgres()
    name = urlsplit(url).path.lstrip("/")
    conn = await asyncpg.connect(base)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()
