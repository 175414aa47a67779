"""A severable TCP relay in front of a real service (database, bus, server).

Tests use it to play a network failure or a service that is down without touching the
real service, which other tests (and other runs) share.
"""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlsplit


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
