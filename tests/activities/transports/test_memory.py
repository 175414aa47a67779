"""The in-process doorbell keeps the contract, in order, and is confined to its process."""

from __future__ import annotations

import pytest

from syncstream.activities.transports.memory import MemoryDoorbell

from .contract import DoorbellContract
from .support import Bells, Recorder


@pytest.fixture
def bus_url() -> str:
    return "memory://"


class TestMemoryDoorbell(DoorbellContract):
    async def test_rings_arrive_in_order_before_ring_returns(self, bells: Bells) -> None:
        a, heard_by_a = await bells.start()
        _, heard_by_b = await bells.start()

        for n in range(1, 51):
            await a.ring(n)

        assert heard_by_a.rings == list(range(1, 51))
        assert heard_by_b.rings == list(range(1, 51))

    async def test_is_healthy_before_start_and_does_not_cross_processes(self) -> None:
        bell = MemoryDoorbell(channel="unused")
        assert bell.healthy
        assert not bell.crosses_processes

    async def test_other_channels_and_closed_bells_are_not_rung(self, bells: Bells) -> None:
        a, heard_by_a = await bells.start()
        closed, heard_by_closed = await bells.start()
        elsewhere = MemoryDoorbell(channel=f"{bells.channel}-elsewhere")
        heard_elsewhere = Recorder()
        await elsewhere.start(heard_elsewhere)
        await closed.close()

        await a.ring(1)
        await elsewhere.close()

        assert heard_by_a.rings == [1]
        assert heard_by_closed.rings == []
        assert heard_elsewhere.rings == []
