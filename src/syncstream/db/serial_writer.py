"""SQLite's writes, one thread, group commit.

SQLite lets one connection write at a time, so every write transaction of a process
runs on one thread that owns the one writing connection. Running a whole transaction
there as a single plain function costs one hop between the event loop and the thread,
where an async driver pays a hop for every statement (and every fetch).

Group commit: the thread takes every transaction that queued up while it was busy and
runs them in one database transaction, each inside its own SAVEPOINT (the transaction
of an ORM session of its own). A transaction that raises is rolled back to its savepoint and fails
alone; the others commit together. If the commit itself fails, all of them fail.
Nothing is delayed to form a batch: under light load a batch is one transaction, and
under load the batches grow by themselves.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session

T = TypeVar("T")
Work = Callable[[Session], T]

logger = logging.getLogger("syncstream.db.writer")

#: Enough to amortise a commit; small enough that one batch's latency stays short.
MAX_BATCH = 64


@dataclass(slots=True)
class _Job(Generic[T]):
    work: Work[T]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[T]
    outcome: tuple[bool, Any] = field(default=(False, None))


class SerialWriter:
    """Runs write transactions on a dedicated thread; see the module docstring."""

    def __init__(self, engine: Engine, *, max_batch: int = MAX_BATCH) -> None:
        fast_savepoints(engine)
        self.engine = engine
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[_Job[Any] | None] = queue.SimpleQueue()
        # Started by the first write: an app that is built but never serves (or is built
        # before a fork) must not leave a thread behind.
        self._thread: threading.Thread | None = None

    async def run(self, work: Work[T]) -> T:
        """Run ``work(session)`` in a transaction of its own (or a savepoint of a shared
        one) and return its result once committed, or raise what it raised."""
        return await self.submit(work)

    def submit(self, work: Work[T]) -> asyncio.Future[T]:
        """Queue ``work`` now; the future settles once it has committed (or failed)."""
        loop = asyncio.get_running_loop()
        job: _Job[T] = _Job(work, loop, loop.create_future())
        if self._thread is None:
            self._thread = threading.Thread(target=self._serve, name="syncstream-sqlite-writer", daemon=True)
            self._thread.start()
        self._queue.put(job)
        return job.future

    def close(self) -> None:
        """Finish what is queued, then stop the thread and release the connection."""
        if self._thread is None:
            self.engine.dispose()
            return
        self._queue.put(None)
        self._thread.join()
        self._thread = None

    def _serve(self) -> None:
        try:
            while True:
                try:
                    # One connection for the thread's whole life: a pool checkout per batch
                    # costs more than some of the writes it carries.
                    connection = self.engine.connect()
                except Exception as exc:  # the file cannot be opened: fail what waits, retry
                    logger.warning("cannot open the database for writing: %s", exc)
                    batch, stop = self._next_batch()
                    for job in batch:
                        job.outcome = (False, exc)
                    self._hand_back(batch)
                    if stop:
                        return
                    continue
                with connection:
                    self._serve_until_closed(connection)
                return
        finally:
            # Here, not in close(): sqlite3 connections belong to the thread that made them.
            self.engine.dispose()

    def _serve_until_closed(self, connection: Connection) -> None:
        while True:
            batch, stop = self._next_batch()
            if batch:
                self._run_batch(connection, batch)
            if stop:
                return

    def _next_batch(self) -> tuple[list[_Job[Any]], bool]:
        """Wait for a job, then take whatever else is queued (up to ``max_batch``);
        the flag says ``close()`` was called."""
        first = self._queue.get()
        if first is None:
            return [], True
        batch: list[_Job[Any]] = [first]
        while len(batch) < self.max_batch:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            if job is None:
                return batch, True
            batch.append(job)
        return batch, False

    def _run_batch(self, connection: Connection, batch: list[_Job[Any]]) -> None:
        try:
            with connection.begin():
                for job in batch:
                    _run_in_savepoint(connection, job)
        except Exception as exc:  # BEGIN or COMMIT failed: nothing of the batch is written
            for job in batch:
                if job.outcome[0] or job.outcome[1] is None:
                    job.outcome = (False, exc)
        self._hand_back(batch)

    @staticmethod
    def _hand_back(batch: list[_Job[Any]]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[_Job[Any]]] = {}
        for job in batch:
            by_loop.setdefault(job.loop, []).append(job)
        for loop, jobs in by_loop.items():
            try:
                loop.call_soon_threadsafe(_settle, jobs)
            except RuntimeError:  # that loop has closed; nobody is waiting any more
                logger.debug("dropped %d write results for a closed event loop", len(jobs))


def _run_in_savepoint(connection: Connection, job: _Job[Any]) -> None:
    """Run one job in a SAVEPOINT of the batch's transaction, with a session of its own.

    The session's own transaction is that savepoint (``create_savepoint``), so whatever
    fails in the job, a flush included, is rolled back to it and undoes the job alone;
    a session per job also keeps one job's ORM objects out of another's way.
    """
    session = Session(connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
    try:
        with session.begin():
            result = job.work(session)
    except Exception as exc:
        job.outcome = (False, exc)
    else:
        job.outcome = (True, result)
    finally:
        session.close()


def fast_savepoints(engine: Engine) -> None:
    """Issue SAVEPOINT statements straight on the driver's connection.

    SQLAlchemy compiles and runs each savepoint statement through its whole execution
    path, which for a small write costs as much as the write; these three statements
    are constant text that needs none of it.
    """
    dialect = engine.dialect

    def raw(connection: Connection, sql: str) -> None:
        driver = connection.connection.driver_connection
        assert driver is not None
        driver.execute(sql)

    # On this one engine's dialect instance only; setattr because mypy (rightly) objects
    # to assigning to a method.
    statements = {
        "do_savepoint": 'SAVEPOINT "{}"',
        "do_release_savepoint": 'RELEASE SAVEPOINT "{}"',
        "do_rollback_to_savepoint": 'ROLLBACK TO SAVEPOINT "{}"',
    }
    for method, template in statements.items():
        setattr(dialect, method, lambda conn, name, template=template: raw(conn, template.format(name)))


def _settle(jobs: list[_Job[Any]]) -> None:
    for job in jobs:
        if job.future.done():  # the request went away while its write committed
            continue
        ok, value = job.outcome
        if ok:
            job.future.set_result(value)
        else:
            job.future.set_exception(value)
