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
from rich.console import Console, ConsoleOptions, RenderResult
from rich.live import Live
from rich.text import Text

from syncstream.client import (
    Backoff,
    CaughtUp,
    Change,
    Connected,
    Connecting,
    Disconnected,
    Heartbeat,
    MustRefetch,
    NotAStream,
    NotFound,
    Reset,
    StreamEvent,
    StreamState,
    SyncClient,
    SyncStreamError,
    Unauthorized,
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

    def render(self, width: int | None = None) -> Text:
        """The status on one line; cut to ``width`` cells (with an ellipsis) so that a narrow terminal
        still shows one line, the state and cursor first and the URL last."""
        line = Text.assemble(
            ("● ", _STATE_STYLES[self.state]),
            (f"{_label(self.state):<12}", _STATE_STYLES[self.state]),
            " cursor ",
            (self.cursor or "-", "cyan"),
            f"  {self.rate():.1f} msg/s  {self.received} received",
        )
        if self.detail:
            line.append(f"  {self.detail}", "yellow")
        line.append("  ")
        line.append(self.url, "dim")
        line.no_wrap = True
        if width is not None:
            line.truncate(max(width, 1), overflow="ellipsis")
        return line

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield self.render(options.max_width)


async def tail(
    url: str,
    *,
    token: str | None = None,
    offset: str | None = None,
    json_output: bool = False,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    client: SyncClient | None = None,
    max_retries: int | None = None,
) -> int:
    """Follow ``url`` until interrupted or a fatal error (or ``max_retries`` consecutive failed
    reconnection attempts); returns the process exit code."""
    out = stdout or sys.stdout
    err_console = Console(file=stderr or sys.stderr, highlight=False)
    target = httpx.URL(url)
    if not target.is_absolute_url:
        err_console.print(Text(f"syncstream tail: give an absolute URL (http://…), not {url!r}", "red"))
        return 2
    origin = str(target.copy_with(raw_path=b"/", fragment=None))
    own_client = client is None
    sync = client or SyncClient(origin, token, backoff=Backoff(max_attempts=max_retries))
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
        err_console.print(
            Text(f"syncstream tail: {_explain(exc, status.url, origin)}", "bold red"), soft_wrap=True
        )
        return 1
    except BrokenPipeError:
        # The reader (head, jq) went away: stop quietly, and keep Python from complaining at exit.
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), out.fileno())
        return 0
    finally:
        if own_client:
            await sync.aclose()


def _explain(error: SyncStreamError, url: str, origin: str) -> str:
    """One line a person can act on."""
    shape = f"stream URLs look like {origin.rstrip('/')}/organizations/ORG/sync/stream or …/pages/stream"
    if isinstance(error, NotAStream):
        kind = {"text/html": "a web page", "application/json": "a JSON document"}.get(
            error.content_type.split(";")[0].strip(), error.content_type or "no content type"
        )
        return f"{url} is not a stream: it answered with {kind}, not text/event-stream ({shape})"
    if isinstance(error, NotFound):
        return (
            f"{url}: not found (404): not a stream, or an organization that does not exist or that you are "
            f"not a member of ({shape})"
        )
    if isinstance(error, Unauthorized):
        return (
            f"Unauthorized: {error}. Sign in with `syncstream login {origin.rstrip('/')} --email …`, "
            "or give --token"
        )
    return f"{type(error).__name__}: {error}"


def run(
    url: str,
    *,
    token: str | None = None,
    offset: str | None = None,
    json_output: bool = False,
    max_retries: int | None = None,
) -> int:
    """The ``syncstream tail`` command; the token defaults to ``$SYNCSTREAM_TOKEN``, then to the one
    ``syncstream login`` stored for the URL's server."""
    token = token or os.environ.get(TOKEN_VARIABLE) or None
    if token is None and httpx.URL(url).is_absolute_url:
        from syncstream.commands.credentials import stored_token

        token = stored_token(url)
    try:
        return asyncio.run(
            tail(url, token=token, offset=offset, json_output=json_output, max_retries=max_retries)
        )
    except KeyboardInterrupt:
        return 130
