"""Where a client keeps its stream cursors between runs.

A cursor is the ID of the last activity the application has *processed*. Persisting it lets a restarted
application resume where it stopped (with ``Last-Event-ID``) instead of reading the whole history again.
A store holds one cursor per stream key (see :func:`syncstream.client.stream_key`), so one store can serve
every stream of an application.

The client saves a message's cursor only when the application asks for the *next* item (or leaves an
``async with`` block cleanly): a crash while processing a message therefore redelivers it on restart
instead of skipping it. For exactly-once across crashes, implement :class:`CursorStore` on the same
database as the application's cache, so that the cached change and the cursor commit together.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path
from typing import Protocol, runtime_checkable

import orjson

__all__ = ["CursorStore", "FileCursorStore", "MemoryCursorStore"]


@runtime_checkable
class CursorStore(Protocol):
    """Persists one cursor (an activity ID string) per stream key.

    Methods are async so that an implementation may write to a database or a remote store.
    """

    async def load(self, key: str) -> str | None:
        """The saved cursor for ``key``, or ``None`` when there is none."""
        ...

    async def save(self, key: str, cursor: str) -> None:
        """Remember ``cursor`` for ``key``; called after the application processed that activity."""
        ...

    async def clear(self, key: str) -> None:
        """Forget ``key``'s cursor: the server said ``must_refetch`` and the stream restarts from ``-1``."""
        ...


class MemoryCursorStore:
    """A store in a dict: survives reconnections and restarts of a stream, not of the process."""

    def __init__(self, cursors: dict[str, str] | None = None) -> None:
        self.cursors: dict[str, str] = dict(cursors or {})

    async def load(self, key: str) -> str | None:
        return self.cursors.get(key)

    async def save(self, key: str, cursor: str) -> None:
        self.cursors[key] = cursor

    async def clear(self, key: str) -> None:
        self.cursors.pop(key, None)


class FileCursorStore:
    """A JSON file ``{"<stream key>": "<cursor>", …}``, rewritten atomically on every change.

    The file is written to a temporary file and renamed over the old one, so a crash leaves either the old
    or the new content, never a torn file. ``fsync`` additionally forces the data to disk before the rename
    (durable across a power loss, at the cost of a disk flush per message); without it a power loss may
    lose the last few saves, which only means a few messages are delivered again. Writes run in a thread so
    the event loop never waits on the disk, and one process should own a file (there is no cross-process
    locking).
    """

    def __init__(self, path: str | os.PathLike[str], *, fsync: bool = False) -> None:
        self.path = Path(path)
        self.fsync = fsync
        self._cursors: dict[str, str] | None = None
        self._lock = asyncio.Lock()

    async def load(self, key: str) -> str | None:
        return (await self._all()).get(key)

    async def save(self, key: str, cursor: str) -> None:
        async with self._lock:
            cursors = await self._all()
            if cursors.get(key) == cursor:
                return
            cursors[key] = cursor
            await asyncio.to_thread(self._write, dict(cursors))

    async def clear(self, key: str) -> None:
        async with self._lock:
            cursors = await self._all()
            if cursors.pop(key, None) is not None:
                await asyncio.to_thread(self._write, dict(cursors))

    async def _all(self) -> dict[str, str]:
        if self._cursors is None:
            self._cursors = await asyncio.to_thread(self._read)
        return self._cursors

    def _read(self) -> dict[str, str]:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        try:
            value = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            # Starting from -1 instead would silently re-apply the whole history over the application's
            # cache: a damaged file is for a human to look at.
            raise ValueError(f"cursor file {self.path} is not valid JSON: {exc}") from exc
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            raise ValueError(f"cursor file {self.path} must hold a JSON object of strings")
        return value

    def _write(self, cursors: dict[str, str]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(orjson.dumps(cursors, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2))
                if self.fsync:
                    file.flush()
                    os.fsync(file.fileno())
            os.replace(temp, self.path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
