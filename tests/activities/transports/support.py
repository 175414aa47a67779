"""Test helpers for doorbells: a recording ring handler, condition waits and a severable TCP proxy."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

from syncstream.activities.transports import Doorbell, doorbell_from_url

WAIT = 15.0
"""Upper bound for anything to happen; tests wait for events, this only stops a hung test."""


class Recorder:
    """A ring handler that remembers what it was told and lets a test wait for it."""

    def __init__(self) -> None:
        self.rings: list[int | None] = []
        self._changed = asyncio.Event()

    def __call__(self, activity_id: int | None) -> None:
        self.rings.append(activity_id)
        self._changed.set()

    @property
    def ids(self) -> set[int]:
        return {ring for ring in self.rings if ring is not None}

    async def wait_for(self, what: str, predicate: Callable[[list[int | None]], bool]) -> None:
        """Wait until `predicate(rings)` holds; fail with `what` and what was heard if it never does."""
        try:
            async with asyncio.timeout(WAIT):
                while not predicate(self.rings):
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            raise AssertionError(f"never heard {what} within {WAIT} s; heard {self.rings[-20:]}") from None

    async def wait_for_ids(self, ids: Iterable[int]) -> None:
        wanted = set(ids)
        await self.wait_for(f"activities {sorted(wanted)[:10]}...", lambda _rings: wanted <= self.ids)

    async def wait_for_unknown(self) -> None:
        """Wait for a "go and look" (None)."""
        await self.wait_for("a 'go and look' (None)", lambda rings: None in rings)


async def eventually(what: str, condition: Callable[[], bool]) -> None:
    """Wait for a state that has no event to await (such as `healthy`), by checking it often."""
    try:
        async with asyncio.timeout(WAIT):
            while not condition():  # noqa: ASYNC110 - a property such as `healthy` has no event to await
                await asyncio.sleep(0.01)
    except TimeoutError:
        raise AssertionError(f"{what} did not happen within {WAIT} s") from None


class TcpProxy:
    """A TCP relay in front of a real server, to cut connections and to play a server that is down.

    While `accepting` is False, new connections are accepted and dropped at once, which a client
    sees as the server being unreachable; `sever()` drops every relayed connection, as a network
    failure would.
    """

    def __init__(self, upstream_url: str) -> None:
        parts = urlsplit(upstream_url)
        assert parts.hostname is not None, upstream_url
        assert parts.port is not None, upstream_url
        self._upstream_url = upstream_url
        self._upstream = (parts.hostname, parts.port)
        self._server: asyncio.Server | None = None
        self._transports: set[asyncio.WriteTransport] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.accepting = True
        self.refused = 0
        """Connections dropped at once because `accepting` was False."""

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)

    @property
    def url(self) -> str:
        """The upstream URL, pointing at the proxy instead."""
        assert self._server is not None, "start the proxy first"
        port = self._server.sockets[0].getsockname()[1]
        parts = urlsplit(self._upstream_url)
        userinfo = parts.netloc.rpartition("@")[0]
        netloc = f"{userinfo}@127.0.0.1:{port}" if userinfo else f"127.0.0.1:{port}"
        return parts._replace(netloc=netloc).geturl()

    def sever(self) -> None:
        for transport in list(self._transports):
            transport.abort()
        self._transports.clear()

    async def close(self) -> None:
        self.accepting = False
        if self._server is not None:
            self._server.close()
        self.sever()
        # Severed relays end by themselves; cancelling them would make asyncio log an error.
        if self._tasks:
            await asyncio.wait(self._tasks)
        if self._server is not None:
            await self._server.wait_closed()

    async def _relay(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            if not self.accepting:
                self.refused += 1
                client_writer.transport.abort()
                return
            try:
                upstream_reader, upstream_writer = await asyncio.open_connection(*self._upstream)
            except OSError:
                client_writer.transport.abort()
                return
            if not self.accepting:  # severed while connecting upstream
                upstream_writer.transport.abort()
                client_writer.transport.abort()
                return
            self._transports.update({client_writer.transport, upstream_writer.transport})
            await asyncio.gather(
                _pump(client_reader, upstream_writer),
                _pump(upstream_reader, client_writer),
            )
        finally:
            self._tasks.discard(task)


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy one direction until either side goes away, then drop the other side too."""
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.transport.abort()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


class Bells:
    """Starts doorbells for one test, each with its own Recorder, and closes them all afterwards."""

    def __init__(self, url: str, channel: str) -> None:
        self.url = url
        self.channel = channel
        self._started: list[Doorbell] = []

    async def start(
        self, bell: Doorbell | None = None, *, url: str | None = None, recorder: Recorder | None = None
    ) -> tuple[Doorbell, Recorder]:
        """Start `bell`, or a bell from `url` (default: the test's bus) on the test's channel."""
        if bell is None:
            bell = doorbell_from_url(url or self.url, channel=self.channel)
        recorder = recorder or Recorder()
        self._started.append(bell)
        # start() must return promptly whatever the state of the bus; the bound only catches a hang.
        await asyncio.wait_for(bell.start(recorder), WAIT)
        return bell, recorder

    async def close(self) -> None:
        for bell in self._started:
            await bell.close()
