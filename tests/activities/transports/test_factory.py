"""`doorbell_from_url` picks the transport a bus URL names, without connecting to anything."""

from __future__ import annotations

import pytest

from syncstream.activities.transports import Doorbell, doorbell_from_url
from syncstream.activities.transports.memory import MemoryDoorbell
from syncstream.activities.transports.nats_bell import NatsDoorbell
from syncstream.activities.transports.postgres import PostgresDoorbell
from syncstream.activities.transports.redis_bell import RedisDoorbell


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("memory://", MemoryDoorbell),
        ("postgresql://postgres@127.0.0.1:5432/test", PostgresDoorbell),
        ("postgres://postgres@127.0.0.1/test", PostgresDoorbell),
        ("postgresql+asyncpg://postgres:secret@db/test", PostgresDoorbell),
        ("redis://127.0.0.1:6379/0", RedisDoorbell),
        ("rediss://user:secret@cache:6380/1", RedisDoorbell),
        ("nats://127.0.0.1:4222", NatsDoorbell),
        ("NATS://127.0.0.1:4222", NatsDoorbell),
    ],
)
def test_picks_the_transport_the_scheme_names(url: str, expected: type[Doorbell]) -> None:
    bell = doorbell_from_url(url, channel="orders")
    assert type(bell) is expected
    assert bell.crosses_processes is (expected is not MemoryDoorbell)


@pytest.mark.parametrize("url", ["kafka://broker:9092", "mysql://db/test", "127.0.0.1:6379", ""])
def test_rejects_unknown_schemes_clearly(url: str) -> None:
    with pytest.raises(ValueError, match="unsupported bus URL"):
        doorbell_from_url(url)


def test_the_error_does_not_show_the_password() -> None:
    with pytest.raises(ValueError, match="unsupported bus URL") as error:
        doorbell_from_url("amqp://user:hunter2@broker/")
    assert "hunter2" not in str(error.value)
    assert "user:***@broker" in str(error.value)


def test_networked_bells_are_not_healthy_before_they_start() -> None:
    for url in ("postgresql://127.0.0.1/test", "redis://127.0.0.1", "nats://127.0.0.1"):
        assert not doorbell_from_url(url).healthy


@pytest.mark.parametrize(
    ("url", "channel"),
    [
        ("postgresql://127.0.0.1/test", ""),
        ("postgresql://127.0.0.1/test", "x" * 64),
        ("redis://127.0.0.1", ""),
        ("nats://127.0.0.1", "two words"),
        ("nats://127.0.0.1", "a.b"),
        ("nats://127.0.0.1", "*"),
        ("nats://127.0.0.1", ""),
    ],
)
def test_rejects_channels_the_engine_cannot_carry(url: str, channel: str) -> None:
    with pytest.raises(ValueError, match="channel"):
        doorbell_from_url(url, channel=channel)
