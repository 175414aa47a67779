"""A minimal Chrome DevTools Protocol client: enough to drive one page of headless Chromium.

No browser-automation dependency: Chromium is started with ``--remote-debugging-port=0``, announces its
DevTools WebSocket on stderr, and is spoken to in JSON over that WebSocket (``websockets`` comes with
uvicorn[standard]). Waiting is event-driven: a page condition is awaited with a ``MutationObserver``
inside the page, a load with ``Page.loadEventFired``; nothing polls on a timer.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import re
import shutil
from collections import deque
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection, connect

#: A failsafe for anything awaited from the browser; never a condition of success.
FAILSAFE_SECONDS = 30.0

CHROMIUM_VARIABLE = "SYNCSTREAM_CHROMIUM"
CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-port=0",
)
_ANNOUNCEMENT = re.compile(rb"DevTools listening on (ws://\S+)")


def find_chromium() -> str | None:
    explicit = os.environ.get(CHROMIUM_VARIABLE)
    if explicit:
        return explicit
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


class CDPError(RuntimeError):
    pass


class Connection:
    """One DevTools WebSocket: commands matched to replies by ID, events fanned out to subscribers."""

    def __init__(self, socket: ClientConnection) -> None:
        self.socket = socket
        self._ids = itertools.count(1)
        self._replies: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._subscribers: list[tuple[str, str | None, asyncio.Queue[dict[str, Any]]]] = []
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for raw in self.socket:
                message = orjson.loads(raw)
                if "id" in message:
                    future = self._replies.pop(message["id"], None)
                    if future is not None and not future.done():
                        future.set_result(message)
                    continue
                for method, session, queue in self._subscribers:
                    if message.get("method") == method and session in (None, message.get("sessionId")):
                        queue.put_nowait(message.get("params", {}))
        finally:
            for future in self._replies.values():
                if not future.done():
                    future.set_exception(CDPError("the DevTools connection closed"))

    async def send(
        self, method: str, params: dict[str, Any] | None = None, session: str | None = None
    ) -> Any:
        command_id = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._replies[command_id] = future
        command: dict[str, Any] = {"id": command_id, "method": method, "params": params or {}}
        if session is not None:
            command["sessionId"] = session
        await self.socket.send(orjson.dumps(command).decode())
        reply = await asyncio.wait_for(future, FAILSAFE_SECONDS)
        if "error" in reply:
            raise CDPError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    async def notify(self, method: str) -> None:
        """Send a command without waiting for its reply (``Browser.close`` never sends one)."""
        await self.socket.send(orjson.dumps({"id": next(self._ids), "method": method}).decode())

    def subscribe(self, method: str, session: str | None = None) -> asyncio.Queue[dict[str, Any]]:
        """Events named ``method`` from now on (subscribe *before* causing them)."""
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._subscribers.append((method, session, queue))
        return queue

    async def close(self) -> None:
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._reader
        await self.socket.close()


class Page:
    """One tab, attached with a flat session."""

    def __init__(self, connection: Connection, session: str) -> None:
        self.connection = connection
        self.session = session

    async def send(self, method: str, params: dict[str, Any] | None = None) -> Any:
        return await self.connection.send(method, params, self.session)

    async def navigate(self, url: str) -> None:
        loaded = self.connection.subscribe("Page.loadEventFired", self.session)
        await self.send("Page.navigate", {"url": url})
        await asyncio.wait_for(loaded.get(), FAILSAFE_SECONDS)

    async def evaluate(self, expression: str) -> Any:
        """The value of ``expression`` (awaited if it is a promise), as JSON."""
        result = await self.send(
            "Runtime.evaluate", {"expression": expression, "awaitPromise": True, "returnByValue": True}
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            raise CDPError(details.get("exception", {}).get("description") or details.get("text"))
        return result["result"].get("value")

    async def wait_for(self, condition: str) -> Any:
        """Wait until the JavaScript expression ``condition`` is truthy; return its value.

        A ``MutationObserver`` re-checks it on every DOM change, so this resolves the moment the page shows
        the state, with no polling.
        """
        script = f"""
            new Promise((resolve) => {{
              const check = () => {{
                let value;
                try {{ value = (() => ({condition}))(); }} catch (error) {{ value = undefined; }}
                if (value) {{
                  observer.disconnect();
                  resolve(typeof value === "object" ? true : value);  // a DOM node does not travel as JSON
                  return true;
                }}
                return false;
              }};
              const observer = new MutationObserver(check);
              if (!check()) observer.observe(document.documentElement,
                {{subtree: true, childList: true, attributes: true, characterData: true}});
            }})
        """
        try:
            return await asyncio.wait_for(self.evaluate(script), FAILSAFE_SECONDS)
        except TimeoutError:
            state = await self.evaluate("document.getElementById('stream')?.outerHTML.slice(0, 2000)")
            raise AssertionError(f"the page never satisfied {condition!r}; #stream is:\n{state}") from None


@contextlib.asynccontextmanager
async def chromium(executable: str, profile: Path) -> AsyncIterator[Page]:
    """Headless Chromium with a fresh profile, and one page in it."""
    process = await asyncio.create_subprocess_exec(
        executable,
        *FLAGS,
        f"--user-data-dir={profile}",
        "about:blank",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    log: deque[bytes] = deque(maxlen=50)
    assert process.stderr is not None
    stderr = process.stderr

    async def announcement() -> bytes:
        while True:
            line = await stderr.readline()
            if not line:
                raise CDPError("chromium exited at start:\n" + b"".join(log).decode(errors="replace"))
            log.append(line)
            found = _ANNOUNCEMENT.search(line)
            if found:
                return found.group(1)

    async def drain() -> None:
        # Keep reading its log, or Chromium blocks once the pipe is full.
        while line := await stderr.readline():
            log.append(line)

    drainer: asyncio.Task[None] | None = None
    connection: Connection | None = None
    try:
        endpoint = await asyncio.wait_for(announcement(), FAILSAFE_SECONDS)
        drainer = asyncio.create_task(drain())
        socket = await connect(endpoint.decode(), max_size=None, open_timeout=FAILSAFE_SECONDS)
        connection = Connection(socket)
        target = await connection.send("Target.createTarget", {"url": "about:blank"})
        attached = await connection.send(
            "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}
        )
        page = Page(connection, attached["sessionId"])
        await page.send("Page.enable")
        await page.send("Runtime.enable")
        yield page
    finally:
        if connection is not None:
            with contextlib.suppress(Exception):
                await connection.notify("Browser.close")
        if process.returncode is None:
            try:
                await asyncio.wait_for(process.wait(), FAILSAFE_SECONDS)
            except TimeoutError:
                process.kill()
                await process.wait()
        if connection is not None:
            await connection.close()
        if drainer is not None:
            drainer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await drainer
