"""Reads of the log bounded by bytes as well as rows, on SQLite and PostgreSQL, with real
big entities (issue 11, item 4: one anonymous read of a log of big page edits held
hundreds of MB).

What a read holds is measured on what it returns: its activities' stored JSON. The
bound is the read's, so these hold whatever the stream or page then does with them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from databases import create_postgres_database, drop_postgres_database
from syncstream.activities import log
from syncstream.activities.bus import ActivityBus
from syncstream.activities.model import Activity, NewActivity
from syncstream.activities.tailer import LogTailer
from syncstream.activities.transports import doorbell_from_url
from syncstream.activities.writer import ActivityWriter, WriteTransaction
from syncstream.db.engine import Database
from syncstream.db.migrate import upgrade
from syncstream.permissions import ReadScope

KIB = 1024
BIG = 500 * KIB  # the page: 500 KiB of content
BOUND = 1024 * KIB


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def database(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Database]:
    if request.param == "sqlite":
        db = Database.connect(f"sqlite:///{tmp_path / 'bounded.db'}", serial=True)
        await upgrade(db)
        yield db
        await db.dispose()
        return
    url = await create_postgres_database()
    db = Database.connect(url)
    try:
        await upgrade(db)
        yield db
    finally:
        await db.dispose()
        await drop_postgres_database(url)


async def write(database: Database, sizes: list[int], content: str = "x") -> list[int]:
    """One page edit per size, each with ``size`` characters of content."""
    writer = ActivityWriter(database, doorbell_from_url("memory://", channel="bounded-reads"))
    ids: list[int] = []
    for size in sizes:

        def edit(tx: WriteTransaction, size: int = size) -> int:
            data = {"id": "pg_1", "title": "Big", "content": content * (size // len(content.encode()))}
            return tx.record(NewActivity("update", "page", "pg_1", None, None, None, data, ["content"]))

        ids.append(await writer.run(edit))
    return ids


def size_of(activity: Activity) -> int:
    """What the bound counts: the stored JSON texts, in bytes, and the fixed overhead."""
    texts = (activity.data, activity.tx, activity.changed_keys)
    return sum(len(t.encode()) for t in texts if t is not None) + log.MESSAGE_OVERHEAD_BYTES


async def read(database: Database, after: int, limit: int, max_bytes: int | None = BOUND) -> log.LogPage:
    async with database.reader.connect() as conn:
        return await log.read_after(conn, after, limit=limit, max_bytes=max_bytes)


async def test_a_read_of_big_activities_stops_at_the_byte_bound(database: Database) -> None:
    ids = await write(database, [BIG] * 12)
    page = await read(database, 0, 1000)
    assert [a.id for a in page] == ids[:2]  # two 500 KiB edits fit in 1 MiB, three do not
    assert sum(map(size_of, page)) <= BOUND
    assert page.cut  # fewer than the limit, and the log goes on
    unbounded = await read(database, 0, 1000, max_bytes=None)
    assert len(unbounded) == 12  # what every read held before: 6 MB here, 500 MB for 1,000


async def test_paging_by_bytes_reads_everything_once_in_order(database: Database) -> None:
    ids = await write(database, [BIG, 3 * KIB, 3 * KIB, BIG, 700 * KIB, 1, BIG, 2 * KIB])
    seen: list[int] = []
    after, reads = 0, 0
    while True:
        page = await read(database, after, 1000)
        reads += 1
        assert page, "a read after an activity that exists returns at least one"
        assert len(page) == 1 or sum(map(size_of, page)) <= BOUND
        seen += [a.id for a in page]
        after = page[-1].id
        if not page.cut:
            break
    assert seen == ids
    assert reads > 1


async def test_one_activity_over_the_bound_is_read_alone(database: Database) -> None:
    ids = await write(database, [BIG, BIG, BIG])
    page = await read(database, 0, 1000, max_bytes=100 * KIB)
    assert [a.id for a in page] == ids[:1]  # alone over the bound, but read: readers move on
    assert page.cut
    last = await read(database, ids[1], 1000, max_bytes=100 * KIB)
    assert [a.id for a in last] == ids[2:]
    assert not last.cut  # the end of the log: not cut


async def test_the_bound_counts_bytes_not_characters(database: Database) -> None:
    # Three bytes per character in UTF-8: 200 K characters are 600 KiB.
    ids = await write(database, [600 * KIB, 600 * KIB], content="€")
    page = await read(database, 0, 1000)
    assert [a.id for a in page] == ids[:1]
    assert page.cut


async def test_the_row_limit_still_holds_and_small_reads_are_whole(database: Database) -> None:
    ids = await write(database, [100] * 30)
    page = await read(database, 0, 10)
    assert [a.id for a in page] == ids[:10]
    assert not page.cut  # stopped by the row limit, not by bytes
    rest = await read(database, ids[9], 1000)
    assert [a.id for a in rest] == ids[10:]
    assert not rest.cut


async def test_the_tailer_routes_a_burst_of_big_writes_in_bounded_reads(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    bus = ActivityBus({"page.updated"})  # the events of the types this test writes
    routed: list[int] = []
    bus.on("page.updated", lambda activity: routed.append(activity.id))
    tailer = LogTailer(database, bus, doorbell_from_url("memory://", channel="tail"), max_bytes=BOUND)
    ids = await write(database, [BIG] * 7)
    reads: list[list[Activity]] = []
    read_after = log.read_after

    async def recorded(*args: object, **kwargs: object) -> log.LogPage:
        page = await read_after(*args, **kwargs)  # type: ignore[arg-type]
        reads.append(list(page))
        return page

    read_inline = log.read_after_inline

    def recorded_inline(*args: object, **kwargs: object) -> log.LogPage | None:
        # SQLite's tailer reads on the loop's thread (db/inline_read.py): the same bound.
        page = read_inline(*args, **kwargs)  # type: ignore[arg-type]
        if page is not None:
            reads.append(list(page))
        return page

    monkeypatch.setattr(log, "read_after", recorded)
    monkeypatch.setattr(log, "read_after_inline", recorded_inline)
    await tailer._drain()
    assert routed == ids  # all of them, in order, in one drain
    assert all(sum(map(size_of, page)) <= BOUND for page in reads if page)
    assert len(reads) >= 4


async def test_the_filters_hold_in_a_bounded_read(database: Database) -> None:
    """The org stream's filters (organization, types, readable projects), with big and
    small activities mixed: a bounded read is a prefix of the unbounded one, filtered alike."""
    writer = ActivityWriter(database, doorbell_from_url("memory://", channel="bounded-filters"))

    def attachment(n: int, org: str, project: str | None, size: int) -> NewActivity:
        data = {"id": f"at_{n}", "name": "n" * size}
        return NewActivity("create", "attachment", f"at_{n}", org, project, None, data)

    plan = [("org_1", None, BIG), ("org_2", None, 10), ("org_1", "prj_1", BIG), ("org_1", "prj_2", BIG)]
    plan += [("org_1", None, 10), ("org_1", "prj_2", 10), ("org_1", None, BIG), ("org_1", "prj_1", 10)]
    for n, (org, project, size) in enumerate(plan):
        await writer.run(lambda tx, n=n, o=org, p=project, s=size: tx.record(attachment(n, o, p, s)))
    scope = ReadScope(everything=False, unscoped=True, project_ids=frozenset({"prj_2"}))
    filters = {"organization_id": "org_1", "entity_types": {"attachment"}, "scope": scope}
    async with database.reader.connect() as conn:
        whole = await log.read_after(conn, 0, limit=1000, **filters)  # type: ignore[arg-type]
        names = [a.entity_id for a in whole]
        assert names == ["at_0", "at_3", "at_4", "at_5", "at_6"]
        got: list[str] = []
        after = 0
        while True:
            page = await log.read_after(conn, after, limit=1000, max_bytes=BOUND, **filters)  # type: ignore[arg-type]
            assert len(page) == 1 or sum(map(size_of, page)) <= BOUND
            got += [a.entity_id for a in page]
            if not page.cut:
                break
            after = page[-1].id
    assert got == names


async def test_the_tailer_starts_holding_the_newest_activities_within_its_byte_bound(
    database: Database,
) -> None:
    """At start the tailer reads the newest activities it keeps for resumes (activities/
    recent.py): more of them than fit its byte bound, it holds the newest that do (at
    least half as many as would fit: it halves the count until a read fits)."""
    ids = await write(database, [BIG] * 6 + [10] * 5)
    bus = ActivityBus(["page.updated"])
    doorbell = doorbell_from_url("memory://", channel="recent-start")
    tailer = LogTailer(database, bus, doorbell, recent_count=64, recent_bytes=BOUND)
    await tailer.start()
    try:
        held = tailer.recent.between(tailer.recent.floor, ids[-1], 100)
        assert held is not None
        assert [a.id for a in held] == ids[-len(held) :]
        assert held[-1].id == ids[-1]
        assert len(held) >= 4  # 7 would fit: 5 small, 2 big
        assert sum(size_of(a) for a in held) <= BOUND
        assert tailer.recent.covers(ids[-2])
        assert not tailer.recent.covers(ids[0])
    finally:
        await tailer.stop()
