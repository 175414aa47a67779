"""Load-generating work in child processes, each with its own uvloop event loop.

The coordinator never generates load itself: it starts children (``spawn``, so they inherit no event loop
or sockets), sends them commands over a pipe and awaits the replies. A child is an object whose async
methods are the commands; :func:`_child_main` runs them one after another on the child's loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

import uvloop

from bench.procstat import raise_fd_limit

_CTX = multiprocessing.get_context("spawn")


class ChildError(RuntimeError):
    """A command failed in a child; the message carries the child's traceback."""


def _child_main(conn: Connection, factory: Callable[[], object]) -> None:
    raise_fd_limit()
    uvloop.run(_serve(conn, factory))


async def _serve(conn: Connection, factory: Callable[[], object]) -> None:
    worker = factory()
    loop = asyncio.get_running_loop()
    inbox: asyncio.Queue[tuple[int, str, dict[str, Any]]] = asyncio.Queue()

    def readable() -> None:
        try:
            inbox.put_nowait(conn.recv())
        except EOFError:  # the coordinator went away
            loop.remove_reader(conn.fileno())
            inbox.put_nowait((0, "exit", {}))

    loop.add_reader(conn.fileno(), readable)
    # The loop made the pipe non-blocking; a large reply must be written whole, so make it blocking again
    # (it is only read when readable, so reads do not stall the loop).
    os.set_blocking(conn.fileno(), True)
    while True:
        seq, name, kwargs = await inbox.get()
        if name == "exit":
            closer = getattr(worker, "close", None)
            if closer is not None:
                with contextlib.suppress(Exception):
                    await closer()
            with contextlib.suppress(OSError):
                conn.send((seq, "ok", None))
            return
        try:
            result = await getattr(worker, name)(**kwargs)
            conn.send((seq, "ok", result))
        except Exception:
            conn.send((seq, "error", traceback.format_exc()))


class Child:
    """The coordinator's handle on one child process."""

    def __init__(self, factory: Callable[[], object], name: str) -> None:
        self._conn, child_conn = _CTX.Pipe()
        self.process = _CTX.Process(target=_child_main, args=(child_conn, factory), name=name, daemon=True)
        self.process.start()
        child_conn.close()
        self.name = name
        self._seq = 0

    @property
    def pid(self) -> int:
        pid = self.process.pid
        assert pid is not None
        return pid

    def send(self, command: str, /, **kwargs: Any) -> int:
        """Send a command; returns its sequence number, which its reply carries."""
        self._seq += 1
        self._conn.send((self._seq, command, kwargs))
        return self._seq

    async def reply(self, seq: int, within: float) -> Any:
        """The reply to command ``seq``. Replies to earlier commands whose caller gave up waiting (a
        cancelled scenario) are read and dropped, so the pipe never gets out of step."""
        loop = asyncio.get_running_loop()
        fd = self._conn.fileno()
        deadline = loop.time() + within
        while True:
            future: asyncio.Future[tuple[int, str, Any]] = loop.create_future()

            def readable(future: asyncio.Future[tuple[int, str, Any]] = future) -> None:
                loop.remove_reader(fd)
                if future.done():
                    return
                try:
                    future.set_result(self._conn.recv())
                except (EOFError, OSError) as exc:
                    future.set_exception(ChildError(f"{self.name} died: {exc!r}"))

            loop.add_reader(fd, readable)
            os.set_blocking(fd, True)  # see _serve
            try:
                got, status, value = await asyncio.wait_for(future, max(0.0, deadline - loop.time()))
            except TimeoutError:
                raise ChildError(f"{self.name}: no reply within {within:.0f} s") from None
            finally:
                loop.remove_reader(fd)
            if got == seq:
                break
        if status != "ok":
            raise ChildError(f"{self.name}: {value}")
        return value

    async def call(self, command: str, within: float, /, **kwargs: Any) -> Any:
        return await self.reply(self.send(command, **kwargs), within)

    async def stop(self, within: float = 5.0) -> None:
        if self.process.is_alive():
            with contextlib.suppress(ChildError, TimeoutError, OSError):
                await self.call("exit", within)
        self.process.join(timeout=1)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout=2)
        self._conn.close()


async def call_all(children: list[Child], command: str, within: float, /, **kwargs: Any) -> list[Any]:
    """Send a command to every child at once and gather the replies (in the same order)."""
    seqs = [child.send(command, **kwargs) for child in children]
    return list(await asyncio.gather(*(c.reply(s, within) for c, s in zip(children, seqs, strict=True))))


async def call_each(
    children: list[Child], command: str, within: float, kwargs_list: list[dict[str, Any]]
) -> list[Any]:
    """Like :func:`call_all`, with different arguments per child."""
    seqs = [child.send(command, **kwargs) for child, kwargs in zip(children, kwargs_list, strict=True)]
    return list(await asyncio.gather(*(c.reply(s, within) for c, s in zip(children, seqs, strict=True))))
