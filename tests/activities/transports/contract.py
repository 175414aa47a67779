"""What every doorbell promises, as test classes each transport's test module inherits.

A module subclasses `DoorbellContract` (or `NetworkDoorbellContract` for a real bus) in a `Test*`
class and defines the `bus_url` fixture; these base classes are not collected by themselves.
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from syncstream.activities.transports import Doorbell
from tcp_proxy import TcpProxy

from .support import WAIT, Bells, Recorder, eventually


async def both_healthy(*bells: Doorbell) -> None:
    """Healthy means subscribed: from then on a ring is sure to be heard."""
    await eventually("every bell healthy", lambda: all(bell.healthy for bell in bells))


def logged(caplog: pytest.LogCaptureFixture, text: str) -> bool:
    return any(text in record.getMessage() for record in caplog.records if record.name == "syncstream.bus")


class FailsFirst(Recorder):
    """A handler with a bug that shows on the first ring only."""

    def __call__(self, activity_id: int | None) -> None:
        super().__call__(activity_id)
        if len(self.rings) == 1:
            raise RuntimeError("a handler bug")


class DoorbellContract:
    async def test_a_ring_reaches_every_bell_including_the_ringer(self, bells: Bells) -> None:
        a, heard_by_a = await bells.start()
        b, heard_by_b = await bells.start()
        await both_healthy(a, b)

        await a.ring(7)

        await heard_by_a.wait_for_ids([7])
        await heard_by_b.wait_for_ids([7])

    async def test_many_rings_from_several_bells_all_arrive(self, bells: Bells) -> None:
        a, heard_by_a = await bells.start()
        b, heard_by_b = await bells.start()
        await both_healthy(a, b)

        await asyncio.gather(*(a.ring(n) for n in range(1, 101)))
        for n in range(101, 201):
            await b.ring(n)

        await heard_by_a.wait_for_ids(range(1, 201))
        await heard_by_b.wait_for_ids(range(1, 201))

    async def test_is_healthy_once_connected(self, bells: Bells) -> None:
        bell, _ = await bells.start()
        await both_healthy(bell)

    async def test_close_is_idempotent_and_a_ring_after_it_does_not_raise(self, bells: Bells) -> None:
        bell, _ = await bells.start()
        await both_healthy(bell)

        await bell.close()
        await bell.close()
        await bell.ring(1)

    async def test_a_failing_handler_does_not_stop_later_rings(self, bells: Bells) -> None:
        bell, _ = await bells.start()
        buggy, heard = await bells.start(recorder=FailsFirst())
        await both_healthy(bell, buggy)

        await bell.ring(1)
        await bell.ring(2)

        await heard.wait_for_ids([1, 2])

    async def test_cannot_be_started_twice(self, bells: Bells) -> None:
        bell, _ = await bells.start()
        with pytest.raises(RuntimeError):
            await bell.start(Recorder())


class NetworkDoorbellContract(DoorbellContract):
    async def test_crosses_processes(self, bells: Bells) -> None:
        bell, _ = await bells.start()
        assert bell.crosses_processes

    async def test_starts_while_the_bus_is_down_and_connects_once_it_is_up(
        self, bells: Bells, proxy: TcpProxy, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.WARNING, logger="syncstream.bus")
        proxy.accepting = False

        bell, heard = await bells.start(url=proxy.url)
        assert not bell.healthy
        await bell.ring(1)  # a write must not fail because the bus is down
        await eventually("a failed connection attempt logged", lambda: logged(caplog, "cannot connect"))

        proxy.accepting = True
        await both_healthy(bell)
        await heard.wait_for_unknown()  # rings may have been missed while it was down
        await bell.ring(2)
        await heard.wait_for_ids([2])

    async def test_closes_promptly_while_the_bus_is_down(
        self, bells: Bells, proxy: TcpProxy, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.WARNING, logger="syncstream.bus")
        proxy.accepting = False
        bell, _ = await bells.start(url=proxy.url)
        await eventually("a failed connection attempt logged", lambda: logged(caplog, "cannot connect"))

        await asyncio.wait_for(bell.close(), WAIT)  # the bound only catches a hang

        assert not bell.healthy

    async def test_recovers_from_a_network_drop(
        self, bells: Bells, proxy: TcpProxy, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.WARNING, logger="syncstream.bus")
        direct, heard_directly = await bells.start()
        relayed, heard_relayed = await bells.start(url=proxy.url)
        await both_healthy(direct, relayed)

        proxy.accepting = False
        proxy.sever()
        await eventually("the relayed bell unhealthy", lambda: not relayed.healthy)
        assert logged(caplog, "connection lost")
        await relayed.ring(3)  # must not raise while down

        proxy.accepting = True
        await both_healthy(relayed)
        await heard_relayed.wait_for_unknown()
        await direct.ring(4)
        await heard_relayed.wait_for_ids([4])
        await relayed.ring(5)
        await heard_directly.wait_for_ids([5])
