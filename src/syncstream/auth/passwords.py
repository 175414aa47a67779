"""Argon2id password hashes, computed off the event loop, a bounded number at a time.

Each hash takes tens of milliseconds and, at the default cost, 64 MiB of memory: by
design, that is what makes guessing expensive. It also makes every sign-up and sign-in a
way to make the server spend memory, so hashing runs on a pool of its own with
``concurrency`` threads (at most ``concurrency * memory_kib`` for hashing, however many
requests come), and at most ``queue`` more wait for a thread. Past that the request is
refused at once with 503 and ``Retry-After``, rather than queued without bound while
every sign-in behind the flood waits too.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from syncstream import problems

T = TypeVar("T")

_hasher = PasswordHasher()

# Verifying against this when the email is unknown makes sign-in take as long for a
# missing account as for a wrong password: no timing oracle for which emails exist.
_DUMMY_HASH = _hasher.hash("not-a-real-password")

#: Seconds a client refused by a full queue is told to wait: a queue drains in about that.
RETRY_AFTER_SECONDS = 1


class PasswordWork:
    """A pool that runs at most ``concurrency`` hashes at once, with ``queue`` waiting."""

    def __init__(self, concurrency: int, queue: int) -> None:
        self.concurrency = concurrency
        self.queue = queue
        self._executor: ThreadPoolExecutor | None = None
        self._pending = 0  # submitted and not done; touched on the event loop only
        self._lock = threading.Lock()
        #: Hashes running right now, and the most that ever ran at once (counted inside
        #: the threads, so it is what really ran, not what was asked for).
        self.running = 0
        self.peak = 0

    def _counted(self, work: Callable[[], T]) -> T:
        with self._lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
        try:
            return work()
        finally:
            with self._lock:
                self.running -= 1

    def _done(self, _: object) -> None:
        self._pending -= 1

    async def run(self, work: Callable[[], T]) -> T:
        if self._pending >= self.concurrency + self.queue:
            raise problems.unavailable(
                "Too many sign-ups and sign-ins at once; try again shortly.", RETRY_AFTER_SECONDS
            )
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self.concurrency, thread_name_prefix="syncstream-password")
        self._pending += 1
        # The executor, not this coroutine, bounds what runs: a client that disconnects
        # cancels its wait, but a hash already running finishes on its thread, and no
        # new one starts until it has.
        future = asyncio.get_running_loop().run_in_executor(self._executor, self._counted, work)
        future.add_done_callback(self._done)
        return await future


_work = PasswordWork(concurrency=2, queue=32)


def configure(*, time_cost: int, memory_kib: int, concurrency: int = 2, queue: int = 32) -> PasswordWork:
    """Set the cost of new hashes (existing hashes carry their own parameters and keep
    verifying) and how many run at once. The cost defaults are argon2-cffi's RFC 9106
    profile; test suites lower them. Returns the pool, whose counters the metrics read."""
    global _hasher, _DUMMY_HASH, _work
    if (concurrency, queue) != (_work.concurrency, _work.queue):
        _work = PasswordWork(concurrency, queue)
    if (time_cost, memory_kib) != (_hasher.time_cost, _hasher.memory_cost):
        _hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib)
        _DUMMY_HASH = _hasher.hash("not-a-real-password")
    return _work


async def hash_password(password: str) -> str:
    hasher = _hasher
    return await _work.run(lambda: hasher.hash(password))


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


async def verify_password(password_hash: str | None, password: str) -> bool:
    if password_hash is None:
        await _work.run(lambda: _verify(_DUMMY_HASH, password))
        return False
    return await _work.run(lambda: _verify(password_hash, password))
