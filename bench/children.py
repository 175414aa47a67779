"""Load-generating work in child processes, each with its own uvloop event loop.

The coordinator never generates load itself: it starts children (``spawn``, so they inherit no event loop
or sockets), sends them commands over a pipe and awaits the replies. A child is an object whose async
methods are the commands; :func:`_child_main` runs them one after another on the child's loop.
"""

from __future__ import annotations

import asyncio
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
    inbox: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()

    def readable() -> None:
        try:
            inbox.put_nowait(conn.recv())
        except EOFError:  # the coordinator went away
            loop.remove_reader(conn.fileno())
            inbox.put_nowait(("exit", {}))

    loop.add_reader(conn.fileno(), readable)
    # The loop made the pipe non-blocking; a large reply must be written whole, so make it blocking again
    # (it is only read when readable, so reads do not stall the loop).
    os.set_blocking(conn.fileno(), True)
    while True:
        name, kwargs = await inbox.get()
        if name == "exit":
            closer = getattr(worker, "close", None)
            if closer is not None:
                try:
                    await closer()
                except Exception:
                    pass
            try:
                conn.send(("ok", None))
            except OSError:
                pass
            return
        try:
            result = await getattr(worker, name)(**kwargs)
            conn.send(("ok", result))
        except Exception:
            conn.send(("error", traceback.format_exc()))


class Child:
    """The coordinator's handle on one child process."""

    def __init__(self, factory: Callable[[], object], name: str) -> None:
        self._conn, child_conn = _CTX.Pipe()
        self.process = _CTX.Process(target=_child_main, args=(child_conn, factory), name=name, daemon=True)
        self.process.start()
        child_conn.close()
        self.name = name

    @property
    def pid(self) -> int:
        pid = self.process.pid
        assert pid is not None
        return pid

    def send(self, command: str, /, **kwargs: Any) -> None:
        self._conn.send((command, kwargs))

    async def reply(self, timeout: float) -> Any:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[tuple[str, Any]] = loop.create_future()
        fd = self._conn.fileno()

        def readable() -> None:
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
            status, value = await asyncio.wait_for(future, timeout)
        finally:
            loop.remove_reader(fd)
        if status != "ok":
            raise ChildError(f"{self.name}: {value}")
        return value

    async def call(self, command: str, timeout: float, /, **kwargs: Any) -> Any:
        self.send(command, **kwargs)
        return await self.reply(timeout)

    async def stop(self, timeout: float = 5.0) -> None:
        if self.process.is_alive():
            try:
                await self.call("exit", timeout)
            except (ChildError, TimeoutError, OSError, BrokenPipeError):
                pass
        self.process.join(timeout=1)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout=2)
        self._conn.close()


async def call_all(children: list[Child], command: str, timeout: float, /, **kwargs: Any) -> list[Any]:
    """Send a command to every child at once and gather the replies (in the same order)."""
    for child in children:
        child.send(command, **kwargs)
    return list(await asyncio.gather(*(child.reply(timeout) for child in children)))


async def call_each(
    children: list[Child], command: str, timeout: float, kwargs_list: list[dict[str, Any]]
) -> list[Any]:
    """Like :func:`call_all`, with different arguments per child."""
    for child, kwargs in zip(children, kwargs_list, strict=True):
        child.send(command, **kwargs)
    return list(await asyncio.gather(*(child.reply(timeout) for child in children)))
