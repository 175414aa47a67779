"""The activity log and its writer, against a real SQLite file.

The central promise: an activity is written in the same transaction as its change, so a
failed change leaves neither the entity nor the activity, and a committed one has both.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from syncstream.activities import log
from syncstream.activities.model import NewActivity
from syncstream.activities.transports import Doorbell, doorbell_from_url
from syncstream.activities.writer import ActivityWriter, WriteTransaction
from syncstream.db.engine import Database
from syncstream.db.migrate import upgrade
from syncstream.db.schema import Activity as ActivityRow
from syncstream.db.schema import Organization
from syncstream.db.types import utcnow
from syncstream.permissions import ReadScope


class Boom(Exception):
    pass


@pytest.fixture(params=["writer-thread", "async-driver"])
async def database(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Database]:
    """Both ways a write transaction runs: on SQLite's writer thread (the server's) and
    through ``run_sync`` on the async driver (PostgreSQL's, and the command line's)."""
    db = Database.connect(f"sqlite:///{tmp_path / 'log.db'}", serial=request.param == "writer-thread")
    await upgrade(db)
    yield db
    await db.dispose()


@pytest.fixture
def channel() -> str:
    """A doorbell channel of this test's own, so that it hears no other test's rings."""
    return f"log-{uuid.uuid4().hex}"


@pytest.fixture
async def rings(channel: str) -> AsyncIterator[list[int | None]]:
    """What a listening bell hears on the test's channel."""
    heard: list[int | None] = []
    listener = doorbell_from_url("memory://", channel=channel)
    await listener.start(heard.append)
    yield heard
    await listener.close()


@pytest.fixture
async def doorbell(channel: str) -> AsyncIterator[Doorbell]:
    bell = doorbell_from_url("memory://", channel=channel)
    yield bell
    await bell.close()


@pytest.fixture
def writer(database: Database, doorbell: Doorbell) -> ActivityWriter:
    return ActivityWriter(database, doorbell)


def attachment_activity(
    entity_id: str,
    *,
    org: str | None = "org_1",
    project: str | None = None,
    entity_type: str = "attachment",
    action: str = "create",
) -> NewActivity:
    return NewActivity(
        action=action,  # type: ignore[arg-type]
        entity_type=entity_type,
        entity_id=entity_id,
        organization_id=org,
        project_id=project,
        user_id="usr_1",
        data={"id": entity_id},
    )


def organization(org_id: str) -> Organization:
    return Organization(id=org_id, name=org_id, slug=org_id.replace("_", "-"), created_at=utcnow())


async def count(database: Database, query: object) -> int:
    async with database.reader.connect() as conn:
        return int((await conn.execute(query)).scalar_one())  # type: ignore[call-overload]


async def org_exists(database: Database, org_id: str) -> bool:
    return await count(database, select(func.count()).where(Organization.id == org_id)) == 1


async def activities_about(database: Database, entity_id: str) -> int:
    return await count(database, select(func.count()).where(ActivityRow.entity_id == entity_id))


async def write(writer: ActivityWriter, *news: NewActivity) -> list[int]:
    return await writer.run(lambda tx: [tx.record(new) for new in news])


async def fail_after_writing(writer: ActivityWriter, org_id: str | None, *news: NewActivity) -> None:
    """Add an organization and record activities in one transaction, then fail in it."""

    def work(tx: WriteTransaction) -> None:
        if org_id is not None:
            tx.session.add(organization(org_id))
            tx.session.flush()
        for new in news:
            assert tx.record(new) > 0  # written, and so rolled back below
        raise Boom

    await writer.run(work)


async def test_a_failed_transaction_leaves_neither_entity_nor_activity(
    database: Database, writer: ActivityWriter, rings: list[int | None]
) -> None:
    with pytest.raises(Boom):
        await fail_after_writing(
            writer, "org_gone", attachment_activity("org_gone", entity_type="organization")
        )
    assert not await org_exists(database, "org_gone")
    assert await activities_about(database, "org_gone") == 0
    assert rings == []  # nothing committed, so nothing is announced


async def test_a_committed_transaction_has_both_and_rings_once(
    database: Database, writer: ActivityWriter, rings: list[int | None]
) -> None:

    def work(tx: WriteTransaction) -> tuple[int, int]:
        tx.session.add(organization("org_kept"))
        tx.session.flush()
        return tx.record(attachment_activity("a1")), tx.record(attachment_activity("a2"))

    first, second = await writer.run(work)
    assert await org_exists(database, "org_kept")
    assert await activities_about(database, "a1") == await activities_about(database, "a2") == 1
    assert second > first
    assert rings == [second]  # once, with the newest ID of the transaction


async def test_a_transaction_without_activities_does_not_ring(
    database: Database, writer: ActivityWriter, rings: list[int | None]
) -> None:
    await writer.run(lambda tx: tx.session.add(organization("org_quiet")))
    assert await org_exists(database, "org_quiet")
    assert rings == []


async def test_ids_increase_in_commit_order_and_survive_rollbacks(
    database: Database, writer: ActivityWriter
) -> None:
    [one] = await write(writer, attachment_activity("x1"))
    with pytest.raises(Boom):
        await fail_after_writing(writer, None, attachment_activity("lost"))
    [two] = await write(writer, attachment_activity("x2"))
    assert two > one
    async with database.reader.connect() as conn:
        assert [a.id for a in await log.read_after(conn, 0, limit=10)] == [one, two]
        assert await log.newest_id(conn) == two


async def test_read_after_orders_and_filters(database: Database, writer: ActivityWriter) -> None:
    ids = await write(
        writer,
        attachment_activity("u1"),
        attachment_activity("p1", project="prj_1"),
        attachment_activity("p2", project="prj_2"),
        attachment_activity("other", org="org_2"),
        attachment_activity("page", org=None, entity_type="page"),
        attachment_activity("m1", entity_type="membership"),
    )
    u1, p1, p2, other, page, m1 = ids

    async def read(after: int = 0, limit: int = 100, **filters: object) -> list[int]:
        async with database.reader.connect() as conn:
            return [a.id for a in await log.read_after(conn, after, limit=limit, **filters)]  # type: ignore[arg-type]

    assert await read() == ids
    assert await read(after=p1) == [p2, other, page, m1]
    assert await read(limit=2) == [u1, p1]
    assert await read(after=m1) == []
    assert await read(organization_id="org_1") == [u1, p1, p2, m1]
    assert await read(entity_types={"page"}) == [page]
    assert await read(organization_id="org_1", entity_types={"attachment"}) == [u1, p1, p2]
    scope = ReadScope(everything=False, unscoped=True, project_ids=frozenset({"prj_2"}))
    assert await read(organization_id="org_1", entity_types={"attachment"}, scope=scope) == [u1, p2]
    projects_only = ReadScope(everything=False, unscoped=False, project_ids=frozenset({"prj_1"}))
    assert await read(organization_id="org_1", scope=projects_only) == [p1]
    nothing = ReadScope(everything=False, unscoped=False, project_ids=frozenset())
    assert await read(organization_id="org_1", scope=nothing) == []
    everything = ReadScope(everything=True, unscoped=True, project_ids=frozenset())
    assert await read(organization_id="org_1", scope=everything) == [u1, p1, p2, m1]


async def test_activities_keep_their_json_as_written(database: Database, writer: ActivityWriter) -> None:
    new = attachment_activity("j1", action="update")
    new.changed_keys = ["name"]
    new.tx = {"transactionId": "t-1", "sourceId": "s", "changedField": None}
    new.data = {"id": "j1", "name": "plan.pdf", "size": None}
    [activity_id] = await write(writer, new)
    async with database.reader.connect() as conn:
        [activity] = await log.read_after(conn, activity_id - 1, limit=1)
    assert activity.id == activity_id
    assert activity.type == "attachment.updated"
    assert activity.changed_keys == '["name"]'
    assert activity.tx == '{"transactionId":"t-1","sourceId":"s","changedField":null}'
    assert activity.data_value() == {"id": "j1", "name": "plan.pdf", "size": None}


async def test_the_idempotency_key_is_unique_and_found(database: Database, writer: ActivityWriter) -> None:
    new = attachment_activity("k1")
    new.idempotency_key = "usr_1:org_1:attachment:t-9"
    await write(writer, new)
    async with AsyncSession(database.reader) as session:
        assert await log.find_by_idempotency_key(session, "usr_1:org_1:attachment:t-9") == "k1"
        assert await log.find_by_idempotency_key(session, "usr_1:org_1:attachment:t-0") is None
    again = attachment_activity("k2")
    again.idempotency_key = new.idempotency_key
    with pytest.raises(Exception, match="UNIQUE"):
        await write(writer, again)
    assert await activities_about(database, "k2") == 0


async def prune(database: Database, before: datetime) -> tuple[int, int]:
    async with AsyncSession(database.writer) as session, session.begin():
        return await log.prune(session, before)


async def test_prune_deletes_old_activities_but_keeps_the_newest(
    database: Database, writer: ActivityWriter
) -> None:
    async with database.reader.connect() as conn:
        assert await log.pruned_through(conn) == 0
    assert await prune(database, datetime.now(UTC) + timedelta(days=1)) == (0, 0)  # empty log
    ids = await write(writer, *(attachment_activity(f"old{n}") for n in range(4)))
    assert await prune(database, datetime.now(UTC) - timedelta(days=1)) == (0, 0)  # nothing that old
    deleted, mark = await prune(database, datetime.now(UTC) + timedelta(days=1))
    assert (deleted, mark) == (3, ids[2])
    async with database.reader.connect() as conn:
        assert [a.id for a in await log.read_after(conn, 0, limit=10)] == [ids[3]]
        assert await log.pruned_through(conn) == ids[2]
        assert await log.newest_id(conn) == ids[3]
    # Pruning again with nothing old left keeps the mark where it was.
    assert await prune(database, datetime.now(UTC) + timedelta(days=1)) == (0, ids[2])
    [later] = await write(writer, attachment_activity("new"))
    assert await prune(database, datetime.now(UTC) + timedelta(days=1)) == (1, ids[3])
    async with database.reader.connect() as conn:
        assert [a.id for a in await log.read_after(conn, 0, limit=10)] == [later]
