"""``syncstream tail URL``: follow a stream in the terminal, resuming after drops.

It is a thin view over :meth:`syncstream.client.SyncClient.follow`, the same engine applications use, so
what an operator sees here (the reconnections, the cursor, ``must_refetch``) is what their clients do.

Two outputs:

* for a person: one coloured line per change (time, activity ID, action, entity type, entity ID, the
  changed keys, the entity's name or title) and, on a terminal, a status line at the bottom (connecting /
  catching up / live, the cursor, messages per second);
* ``--json``: each ``StreamMessage`` as one JSON line on stdout, byte for byte as the server sent it, and
  nothing else there (status goes to stderr), so ``syncstream tail --json URL | jq`` just works.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final, TextIO

import httpx
from rich.console import Console
from rich.live import Live
from rich.text import Text

from syncstream.client import (
    CaughtUp,
    Change,
    Connected,
    Connecting,
    Disconnected,
    Heartbeat,
    MustRefetch,
    Reset,
    StreamEvent,
    StreamState,
    SyncClient,
    SyncStreamError,
)
from syncstream.stream.messages import StreamMessage

__all__ = ["TOKEN_VARIABLE", "TailStatus", "format_change", "run", "tail"]

#: Where the token comes from when ``--token`` is not given (keeps it out of shell history and ``ps``).
TOKEN_VARIABLE: Final = "SYNCSTREAM_TOKEN"
#: Seconds over which "messages per second" is averaged.
RATE_WINDOW: Final = 10.0

_ACTION_STYLES: Final = {"create": "bold green", "update": "bold yellow", "delete": "bold red"}
_STATE_STYLES: Final = {
    StreamState.CONNECTING: "yellow",
    StreamState.CATCHING_UP: "cyan",
    StreamState.LIVE: "bold green",
    StreamState.RECONNECTING: "bold red",
    StreamState.CLOSED: "dim",
}


def _label(state: StreamState) -> str:
    return state.value.replace("_", " ")


def _entity_label(message: StreamMessage) -> str | None:
    """What a person recognises the entity by: an attachment's name, a page's title."""
    data = message.data or {}
    for key in ("name", "title"):
        value = data.get(key)
        if isinstance(value, str):
            return value
    return None


def format_change(message: StreamMessage) -> Text:
    """One readable line for a change. Built from styled parts, never from markup, so an entity named
    ``[bold]`` prints as written."""
    created = message.created_at.astimezone()
    line = Text.assemble(
        (f"{created:%H:%M:%S}.{created.microsecond // 1000:03d}", "dim"),
        " ",
        (f"#{message.activity_id}", "cyan"),
        " ",
        (f"{message.action:<6}", _ACTION_STYLES.get(message.action, "bold")),
        " ",
        (message.entity_type, "magenta"),
        " ",
        (message.entity_id, "blue"),
    )
    if message.changed_keys:
        line.append("  ")
        line.append(", ".join(message.changed_keys), "yellow")
    label = _entity_label(message)
    if label is not None:
        line.append("  ")
        line.append(repr(label), "bold")
    if message.tx is not None:
        line.append(f"  tx {message.tx.transaction_id}@{message.tx.source_id}", "dim")
    return line


@dataclass
class TailStatus:
    """What the status line shows; updated from the follower's events."""

    url: str
    state: StreamState = StreamState.CONNECTING
    cursor: str | None = None
    received: int = 0
    detail: str = ""
    clock: Callable[[], float] = time.monotonic
    _times: deque[float] = field(default_factory=deque)
    _started: float = field(default=0.0)

    def __post_init__(self) -> None:
        self._started = self.clock()

    def observe(self, event: StreamEvent, state: StreamState, cursor: str | None) -> None:
        self.state, self.cursor = state, cursor
        if isinstance(event, Change):
            self.received += 1
            self._times.append(self.clock())
            self.detail = ""
        elif isinstance(event, Connecting):
            self.detail = f"attempt {event.attempt}" if event.attempt > 1 else ""
        elif isinstance(event, Disconnected):
            self.detail = f"retry in {event.retry_in:.1f}s: {event.reason}"
        elif isinstance(event, Reset):
            self.detail = "must_refetch: restarted from -1"
        elif isinstance(event, Connected | CaughtUp | Heartbeat):
            self.detail = ""

    def rate(self) -> float:
        """Messages per second over the last :data:`RATE_WINDOW` seconds (or since the start)."""
        now = self.clock()
        while self._times and self._times[0] < now - RATE_WINDOW:
            self._times.popleft()
        # At least a second: two messages in the first millisecond are not "2000 msg/s".
        span = min(RATE_WINDOW, max(now - self._started, 1.0))
        return len(self._times) / span

    def render(self) -> Text:
        line = Text.assemble(
            ("● ", _STATE_STYLES[self.state]),
            (f"{_label(self.state):<12}", _STATE_STYLES[self.state]),
            " cursor ",
            (self.cursor or "-", "cyan"),
            f"  {self.rate():.1f} msg/s  {self.received} received  ",
            (self.url, "dim"),
        )
        if self.detail:
            line.append(f"  {self.detail}", "yellow")
        return line

    def __rich__(self) -> Text:
        return self.render()


async def tail(
    url: str,
    *,
    token: str | None = None,
    offset: str | None = None,
    json_output: bool = False,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    client: SyncClient | None = None,
) -> int:
    """Follow ``url`` until interrupted or a fatal error; returns the process exit code."""
    out = stdout or sys.stdout
    err_console = Console(file=stderr or sys.stderr, highlight=False)
    target = httpx.URL(url)
    if not target.is_absolute_url:
        err_console.print(Text(f"syncstream tail: give an absolute URL (http://…), not {url!r}", "red"))
        return 2
    origin = str(target.copy_with(raw_path=b"/", fragment=None))
    own_client = client is None
    sync = client or SyncClient(origin, token)
    human = None if json_output else Console(file=out, highlight=False)
    status = TailStatus(str(target.copy_with(query=None, fragment=None)))

    def notice(text: str) -> None:
        err_console.print(Text(f"syncstream tail: {text}", "yellow"))

    def on_must_refetch(error: MustRefetch) -> None:
        # tail caches nothing, so there is nothing to reset: say so, and show the stream again from -1.
        notice(f"{error}; showing the stream again from -1")

    subscription = sync.follow(target, offset=offset, cursor_store=None, on_must_refetch=on_must_refetch)
    live: Live | None = None
    if human is not None and human.is_terminal:
        live = Live(status, console=human, refresh_per_second=4, transient=True)
    try:
        with live if live is not None else contextlib.nullcontext():
            async with subscription:
                async for event in subscription:
                    status.observe(event, subscription.state, subscription.cursor)
                    if isinstance(event, Change):
                        if human is None:
                            out.write(event.raw + "\n")
                            out.flush()
                        else:
                            human.print(format_change(event.message), soft_wrap=True)
                    elif live is None and not isinstance(event, Heartbeat | Change):
                        # Without a terminal to redraw, say each state change once, on stderr.
                        err_console.print(status.render(), soft_wrap=True)
        return 0
    except SyncStreamError as exc:
        err_console.print(Text(f"syncstream tail: {type(exc).__name__}: {exc}", "bold red"))
        return 1
    except BrokenPipeError:
        # The reader (head, jq) went away: stop quietly, and keep Python from complaining at exit.
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), out.fileno())
        return 0
    finally:
        if own_client:
            await sync.aclose()


def run(url: str, *, token: str | None = None, offset: str | None = None, json_output: bool = False) -> int:
    """The ``syncstream tail`` command; the token defaults to ``$SYNCSTREAM_TOKEN``."""
    token = token or os.environ.get(TOKEN_VARIABLE) or None
    try:
        return asyncio.run(tail(url, token=token, offset=offset, json_output=json_output))
    except KeyboardInterrupt:
        return 130
