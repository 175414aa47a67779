"""Deployments sharing one Redis or NATS server ring only their own bell.

The channel defaults to one derived from the database (issue 11, item 14: it used to be
``syncstream`` for everyone, so two deployments on one broker woke each other's tailers),
and ``SYNCSTREAM_BUS_CHANNEL`` sets it outright. The doorbells here are built exactly as
the server builds its own (``build_doorbell``), on the real services.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from services import require_nats, require_redis
from syncstream.activities.transports import Doorbell, channel_for_database
from syncstream.app import build_doorbell
from syncstream.config import Settings

from .support import Recorder, eventually


def test_one_database_one_channel_whatever_the_credentials_or_driver() -> None:
    same = [
        "postgresql://app:secret@DB.example:5432/orders",
        "postgresql+asyncpg://reader@db.example/orders",
        "postgres://other:pw@db.example:5432/orders?sslmode=require",
    ]
    assert len({channel_for_database(url) for url in same}) == 1
    assert "secret" not in channel_for_database(same[0])


@pytest.mark.parametrize(
    "other",
    [
        "postgresql://app@db.example:5432/invoices",  # another database on the same server
        "postgresql://app@db2.example:5432/orders",  # the same name on another server
        "postgresql://app@db.example:5433/orders",  # another cluster on the same host
        "sqlite:///orders",
    ],
)
def test_two_databases_never_share_a_channel(other: str) -> None:
    assert channel_for_database("postgresql://app@db.example/orders") != channel_for_database(other)


def test_a_sqlite_file_is_named_by_its_absolute_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    relative = channel_for_database("sqlite:///app.db")
    assert relative == channel_for_database(f"sqlite:///{tmp_path / 'app.db'}")
    assert relative != channel_for_database(f"sqlite:///{tmp_path / 'other.db'}")


def test_the_derived_channel_is_valid_on_every_transport() -> None:
    channel = channel_for_database("postgresql://app@db.example/orders")
    assert channel.startswith("syncstream-")
    assert len(channel) == len("syncstream-") + 12
    for url in ("memory://", "redis://127.0.0.1", "nats://127.0.0.1", "postgresql://127.0.0.1/x"):
        assert build_doorbell(Settings(database_url="sqlite:///x.db", bus_url=url)) is not None


async def test_an_explicit_channel_wins_over_the_database(
    monkeypatch: pytest.MonkeyPatch, started: list[Doorbell]
) -> None:
    monkeypatch.setenv("SYNCSTREAM_BUS_CHANNEL", f"tenant-{uuid.uuid4().hex}")
    settings = Settings.from_env()
    # One database reached under two names: only an explicit channel can join them.
    first, _ = await start(started, "memory://", "postgresql://db.example/orders", settings)
    _, heard = await start(started, "memory://", "postgresql://10.0.0.7/orders", settings)
    await first.ring(5)
    assert heard.ids == {5}


def test_a_bad_channel_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="one subject token"):
        build_doorbell(Settings(bus_url="nats://127.0.0.1", bus_channel="a.b"))


@pytest.fixture(
    params=[pytest.param("redis", marks=pytest.mark.redis), pytest.param("nats", marks=pytest.mark.nats)]
)
async def broker(request: pytest.FixtureRequest) -> str:
    return await (require_redis() if request.param == "redis" else require_nats())


@pytest.fixture
async def started() -> AsyncIterator[list[Doorbell]]:
    bells: list[Doorbell] = []
    yield bells
    for bell in bells:
        await bell.close()


async def start(
    bells: list[Doorbell], broker: str, database_url: str, settings: Settings | None = None
) -> tuple[Doorbell, Recorder]:
    bell = build_doorbell((settings or Settings()).with_overrides(database_url=database_url, bus_url=broker))
    recorder = Recorder()
    bells.append(bell)
    await bell.start(recorder)
    await eventually(f"{bell!r} to subscribe", lambda: bell.healthy)
    return bell, recorder


async def test_deployments_on_one_broker_hear_only_their_own_database(
    broker: str, started: list[Doorbell]
) -> None:
    # Database names no other test run uses, so that nothing else rings these channels.
    ours = f"postgresql://app@db.example/orders_{uuid.uuid4().hex}"
    theirs = f"postgresql://app@db.example/orders_{uuid.uuid4().hex}"
    # Two processes of our deployment (one logs in differently) and one of the other.
    first, first_heard = await start(started, broker, ours)
    _second, second_heard = await start(started, broker, ours.replace("app@", "app:pw@"))
    other, other_heard = await start(started, broker, theirs)

    await first.ring(1)
    await second_heard.wait_for_ids([1])  # the same database: heard
    # The broker handed ring 1 to every subscriber before the one that just heard it. So
    # once the other deployment hears its own later ring, ring 1 would be there already.
    await other.ring(2)
    await other_heard.wait_for_ids([2])
    assert other_heard.ids == {2}, "the other deployment heard our ring"
    # And the other way round: ring 2 reached no process of ours before our next ring.
    await first.ring(3)
    await second_heard.wait_for_ids([3])
    await first_heard.wait_for_ids([1, 3])
    assert 2 not in first_heard.ids | second_heard.ids, "we heard the other deployment's ring"
