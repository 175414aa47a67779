"""What both streams share: a JSON page must not skip history pruned while it was read."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import orjson
import pytest
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from syncstream import problems
from syncstream.activities import log
from syncstream.activities.model import Activity, NewActivity
from syncstream.activities.writer import WriteTransaction
from syncstream.app import build_runtime
from syncstream.config import Settings
from syncstream.db.migrate import upgrade
from syncstream.db.types import utcnow
from syncstream.modules.streaming import json_page
from syncstream.runtime import Runtime
from syncstream.stream.cursor import Resolved


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[Runtime]:
    runtime = build_runtime(Settings(database_url=f"sqlite:///{tmp_path / 'streaming.db'}"))
    await upgrade(runtime.database)
    yield runtime
    await runtime.database.dispose()


async def write_pages(runtime: Runtime, count: int) -> list[int]:
    def record(tx: WriteTransaction) -> list[int]:
        return [
            tx.record(NewActivity("create", "page", f"pg_{n}", None, None, None, {"id": f"pg_{n}"}))
            for n in range(count)
        ]

    return await runtime.writer.run(record)


async def prune_all_but_newest(runtime: Runtime) -> int:
    async with AsyncSession(runtime.database.writer) as session, session.begin():
        _, mark = await log.prune(session, utcnow() + timedelta(days=1))
    return mark


def accept(_: Activity) -> bool:
    return True


async def test_a_prune_racing_the_read_is_must_refetch_not_a_gap(runtime: Runtime) -> None:
    ids = await write_pages(runtime, 5)

    async def read_after_a_prune(
        conn: AsyncConnection, after: int, limit: int, max_bytes: int
    ) -> list[Activity]:
        await prune_all_but_newest(runtime)  # lands between the offset check and the read
        return await log.read_after(conn, after, limit=limit, max_bytes=max_bytes)

    with pytest.raises(problems.Problem) as refused:
        await json_page(runtime, read_after_a_prune, accept, Resolved(after=ids[0], reported=ids[0]), 10)
    assert refused.value.status == 409
    assert refused.value.type == "must_refetch"


async def test_without_a_prune_the_page_is_served(runtime: Runtime) -> None:
    ids = await write_pages(runtime, 5)

    async def read_after(conn: AsyncConnection, after: int, limit: int, max_bytes: int) -> list[Activity]:
        return await log.read_after(conn, after, limit=limit, max_bytes=max_bytes)

    response = await json_page(runtime, read_after, accept, Resolved(after=ids[0], reported=ids[0]), 10)
    page = orjson.loads(bytes(response.body))
    assert [int(m["activityId"]) for m in page["activities"]] == ids[1:]
    assert page["cursor"] == str(ids[-1])
    assert page["hasMore"] is False


async def test_a_json_page_stops_at_the_configured_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SYNCSTREAM_PAGE_BYTES sets the bound; a page cut by it says hasMore."""
    monkeypatch.setenv("SYNCSTREAM_PAGE_BYTES", "2000")
    settings = Settings.from_env().with_overrides(database_url=f"sqlite:///{tmp_path / 'bytes.db'}")
    assert settings.page_bytes == 2000
    runtime = build_runtime(settings)
    await upgrade(runtime.database)
    try:

        def record(tx: WriteTransaction) -> list[int]:
            data = {"id": "pg_1", "content": "x" * 700}
            return [
                tx.record(NewActivity("update", "page", "pg_1", None, None, None, data)) for _ in range(5)
            ]

        ids = await runtime.writer.run(record)

        async def read_after(conn: AsyncConnection, after: int, limit: int, max_bytes: int) -> list[Activity]:
            return await log.read_after(conn, after, limit=limit, max_bytes=max_bytes)

        response = await json_page(runtime, read_after, accept, Resolved(after=0, reported=None), 100)
        page = orjson.loads(bytes(response.body))
        # Each counts ~730 bytes of JSON and 400 of overhead: one fits in 2,000, two do not.
        assert [int(m["activityId"]) for m in page["activities"]] == ids[:1]
        assert page["hasMore"] is True
        assert page["cursor"] == str(ids[0])
    finally:
        await runtime.database.dispose()
