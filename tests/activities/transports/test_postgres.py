"""The PostgreSQL doorbell against a real server (SYNCSTREAM_TEST_POSTGRES_URL)."""

from __future__ import annotations

import logging
import uuid

import asyncpg
import pytest

from syncstream.activities.transports.postgres import PostgresDoorbell

from .contract import NetworkDoorbellContract, both_healthy
from .support import Bells

pytestmark = pytest.mark.postgres


@pytest.fixture
def bus_url(postgres_url: str) -> str:
    return postgres_url


class TestPostgresDoorbell(NetworkDoorbellContract):
    pass


async def terminate_backends(url: str, application_name: str) -> int:
    """pg_terminate_backend the connections labelled `application_name`, as a failover or an admin would."""
    admin = await asyncpg.connect(url)
    try:
        # pg_terminate_backend in the select list, not in WHERE: PostgreSQL may evaluate WHERE
        # clauses in any order, and must never get to terminate a connection of someone else.
        rows = await admin.fetch(
            "SELECT pg_terminate_backend(pid) AS terminated"
            " FROM pg_stat_activity WHERE application_name = $1",
            application_name,
        )
        return sum(1 for row in rows if row["terminated"])
    finally:
        await admin.close()


async def test_listens_again_after_its_backends_are_terminated(
    bells: Bells, postgres_url: str, channel: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="syncstream.bus")
    name = f"syncstream-test-{uuid.uuid4().hex[:16]}"
    bell, heard = await bells.start(PostgresDoorbell(postgres_url, channel=channel, application_name=name))
    other, heard_by_other = await bells.start()
    await both_healthy(bell, other)
    await bell.ring(10)  # opens the publishing connection, so that it is terminated too
    await heard_by_other.wait_for_ids([10])

    assert await terminate_backends(postgres_url, name) == 2

    await heard.wait_for_unknown()
    assert bell.healthy
    assert any("connection lost" in record.getMessage() for record in caplog.records)
    await other.ring(11)
    await heard.wait_for_ids([11])
    await bell.ring(12)  # on a fresh publishing connection
    await heard_by_other.wait_for_ids([12])
    assert None not in heard_by_other.rings


async def test_takes_sqlalchemy_style_urls(bells: Bells, postgres_url: str, channel: str) -> None:
    url = postgres_url.replace("postgresql://", "postgresql+asyncpg://", 1)
    bell, heard = await bells.start(url=url)
    await both_healthy(bell)
    await bell.ring(1)
    await heard.wait_for_ids([1])
