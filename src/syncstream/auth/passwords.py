"""Argon2id password hashes, computed off the event loop, a bounded number at a time.

Each hash takes tens of milliseconds and, at the default cost, 64 MiB of memory: by
design, that is what makes guessing expensive. It also makes every sign-up and sign-in a
way to make the server spend memory, so hashing runs on a pool of its own with
``concurrency`` threads (at most ``concurrency * memory_kib`` for hashing, however many
requests come), and at most ``queue`` more wait for a thread, sign-ins ahead of
sign-ups. Past that the request is refused at once with 503 and ``Retry-After``, rather
than queued without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque
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
# Made once with the default cost (a hash is a tenth of a second: start-up, and so a
# restart's reconnection storm, waited for it), and again if configure() changes it.
_DUMMY_HASH = (
    "$argon2id$v=19$m=65536,t=3,p=4$HAzF5EZ15zlThM4sX77kBw$1+t7D3Xe6IAnPMvquv7KWLPg5rzTbOOAVu4ig9XjZSg"
)

#: Seconds a client refused by a full queue is told to wait: a queue drains in about that.
RETRY_AFTER_SECONDS = 1


class PasswordWork:
    """Runs at most ``concurrency`` hashes at once, with at most ``queue`` more waiting.

    Waiting is in two lines: urgent work (verifying a sign-in) goes before the rest
    (hashing a new account's password), so that a sign-up flood delays the people
    signing in by at most the hashes already running.
    """

    def __init__(self, concurrency: int, queue: int) -> None:
        self.concurrency = concurrency
        self.queue = queue
        self._executor: ThreadPoolExecutor | None = None
        # All of the following are touched on the event loop only.
        self._free = concurrency
        self._waiting: tuple[deque[asyncio.Future[None]], deque[asyncio.Future[None]]] = (deque(), deque())
        self._admitted = 0  # waiting or running
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

    def _hand_over(self) -> None:
        """A slot came free: to the first in line (urgent first), or back to the pool."""
        for line in self._waiting:
            while line:
                waiter = line.popleft()
                if not waiter.done():
                    waiter.set_result(None)
                    return
        self._free += 1

    def _finished(self) -> None:
        self._admitted -= 1
        self._hand_over()

    async def _acquire(self, urgent: bool) -> None:
        if self._free > 0 and not any(self._waiting):
            self._free -= 1
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        line = self._waiting[0 if urgent else 1]
        line.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._hand_over()  # it was handed a slot as it gave up: pass it on
            elif waiter in line:
                line.remove(waiter)
            raise

    async def run(self, work: Callable[[], T], *, urgent: bool = False) -> T:
        if self._admitted >= self.concurrency + self.queue:
            raise problems.unavailable(
                "Too many sign-ups and sign-ins at once; try again shortly.", RETRY_AFTER_SECONDS
            )
        self._admitted += 1
        try:
            await self._acquire(urgent)
        except BaseException:
            self._admitted -= 1
            raise
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self.concurrency, thread_name_prefix="syncstream-password")
        loop = asyncio.get_running_loop()
        running = self._executor.submit(self._counted, work)

        def done(_: object) -> None:
            # The slot is freed when the hash is done, not when its request gives up: a
            # client that disconnects cannot make room for another hash while its own
            # still runs on the thread.
            with contextlib.suppress(RuntimeError):  # the loop closed first (shutdown)
                loop.call_soon_threadsafe(self._finished)

        running.add_done_callback(done)
        return await asyncio.wrap_future(running, loop=loop)


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
        await _work.run(lambda: _verify(_DUMMY_HASH, password), urgent=True)
        return False
    return await _work.run(lambda: _verify(password_hash, password), urgent=True)
