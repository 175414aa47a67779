"""The password-hashing pool on its own, with work that blocks on an event the test sets:
never more running than its concurrency, a bounded queue (503 past it), sign-ins first,
and a client that gives up frees its place but never a running thread's slot."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

import pytest

from syncstream.auth.passwords import PasswordWork
from syncstream.problems import Problem


class Gate:
    """Work items that block until released, recording the order in which they ran."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.release = threading.Event()
        self._lock = threading.Lock()
        self._loop = asyncio.get_running_loop()
        self._changed = asyncio.Event()

    def work(self, name: str) -> Callable[[], str]:
        def run() -> str:
            with self._lock:
                self.started.append(name)
            self._loop.call_soon_threadsafe(self._changed.set)
            assert self.release.wait(30)
            return name

        return run

    async def until_started(self, count: int) -> None:
        """Until ``count`` work items have started on their threads (at most 10 s)."""
        async with asyncio.timeout(10):
            while len(self.started) < count:
                self._changed.clear()
                await self._changed.wait()


async def test_at_most_concurrency_run_and_at_most_queue_wait() -> None:
    pool = PasswordWork(concurrency=2, queue=3)
    gate = Gate()
    tasks = [asyncio.create_task(pool.run(gate.work(f"w{n}"))) for n in range(5)]
    await gate.until_started(2)
    assert pool.running == 2
    with pytest.raises(Problem) as refused:
        await pool.run(gate.work("extra"))
    assert (refused.value.status, refused.value.headers["Retry-After"]) == (503, "1")
    gate.release.set()
    assert sorted(await asyncio.gather(*tasks)) == [f"w{n}" for n in range(5)]
    assert pool.peak == 2
    assert pool.running == 0
    assert await pool.run(gate.work("after")) == "after"  # every slot came back


async def test_sign_ins_go_before_waiting_sign_ups() -> None:
    pool = PasswordWork(concurrency=1, queue=10)
    gate = Gate()
    first = asyncio.create_task(pool.run(gate.work("first")))
    await gate.until_started(1)
    sign_ups = [asyncio.create_task(pool.run(gate.work(f"up{n}"))) for n in range(3)]
    await asyncio.sleep(0)
    sign_in = asyncio.create_task(pool.run(gate.work("in"), urgent=True))
    await asyncio.sleep(0)
    gate.release.set()
    await asyncio.gather(first, sign_in, *sign_ups)
    assert gate.started == ["first", "in", "up0", "up1", "up2"]


async def test_a_waiter_that_gives_up_leaves_the_queue() -> None:
    pool = PasswordWork(concurrency=1, queue=1)
    gate = Gate()
    running = asyncio.create_task(pool.run(gate.work("running")))
    await gate.until_started(1)
    waiting = asyncio.create_task(pool.run(gate.work("gave-up")))
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    queued = asyncio.create_task(pool.run(gate.work("queued")))  # its place is free again
    gate.release.set()
    assert await asyncio.gather(running, queued) == ["running", "queued"]
    assert "gave-up" not in gate.started


async def test_a_request_that_gives_up_does_not_free_its_running_thread() -> None:
    pool = PasswordWork(concurrency=1, queue=1)
    gate = Gate()
    abandoned = asyncio.create_task(pool.run(gate.work("abandoned")))
    await gate.until_started(1)
    abandoned.cancel()
    with pytest.raises(asyncio.CancelledError):
        await abandoned
    # The hash still runs on its thread: the next one waits for it, never runs beside it.
    nxt = asyncio.create_task(pool.run(gate.work("next")))
    async with asyncio.timeout(10):
        while not any(pool._waiting):  # noqa: ASYNC110 - until "next" is queued behind the running hash
            await asyncio.sleep(0)
    assert gate.started == ["abandoned"]
    gate.release.set()
    assert await nxt == "next"
    assert pool.peak == 1


def test_the_unknown_account_hash_costs_what_a_real_one_does() -> None:
    """Sign-in with an unknown email verifies against a stored dummy hash: made with the
    hasher's own parameters, it takes as long as a wrong password (no timing oracle)."""
    from argon2 import PasswordHasher, extract_parameters

    from syncstream.auth import passwords

    made = extract_parameters(passwords._DUMMY_HASH)
    hasher = passwords._hasher
    assert (made.time_cost, made.memory_cost, made.parallelism) == (
        hasher.time_cost,
        hasher.memory_cost,
        hasher.parallelism,
    )
    assert PasswordHasher().verify(passwords._DUMMY_HASH, "not-a-real-password")
