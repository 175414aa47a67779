"""Helpers for the client tests: an organization to stream, a recorder of the client's requests, a
background reader of a subscription, and a scripted HTTP server for answers the real one never gives."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
import orjson

from harness import Api, ServerProcess, User, unique
from syncstream.client import StreamEvent, Subscription

T = TypeVar("T")

#: A failsafe for awaiting something that must happen; never a condition of success.
FAILSAFE_SECONDS = 30.0


@dataclass
class Org:
    """A user who owns an organization, with helpers to write to it through the API."""

    server_url: str
    owner: User
    slug: str
    id: str

    async def create(self, name: str, **extra: Any) -> dict[str, Any]:
        api = Api(self.server_url, self.owner.token)
        try:
            result: dict[str, Any] = await api.ok(
                "POST", f"/organizations/{self.slug}/attachments", 201, json={"name": name, **extra}
            )
            return result
        finally:
            await api.aclose()

    async def rename(self, attachment_id: str, name: str, **extra: Any) -> dict[str, Any]:
        api = Api(self.server_url, self.owner.token)
        try:
            result: dict[str, Any] = await api.ok(
                "PATCH",
                f"/organizations/{self.slug}/attachments/{attachment_id}",
                200,
                json={"name": name, **extra},
            )
            return result
        finally:
            await api.aclose()

    async def activity_ids(self) -> list[str]:
        """Every activity ID of the org stream, read in JSON mode (the reference a stream is checked
        against)."""
        api = Api(self.server_url, self.owner.token)
        try:
            ids: list[str] = []
            offset = "-1"
            while True:
                page = await api.ok(
                    "GET", f"/organizations/{self.slug}/sync/stream?offset={offset}&limit=1000"
                )
                ids += [a["activityId"] for a in page["activities"]]
                if not page["hasMore"]:
                    return ids
                offset = page["cursor"]
        finally:
            await api.aclose()


async def make_org(server_url: str) -> Org:
    api = Api(server_url)
    try:
        owner = await api.sign_up()
        owner_api = owner.api()
        org = await owner_api.ok(
            "POST", "/organizations", 201, json={"name": "Client tests", "slug": unique("c")}
        )
        await owner_api.aclose()
        return Org(server_url, owner, org["slug"], org["id"])
    finally:
        await api.aclose()


class RequestLog:
    """An httpx request hook recording what the client sent (headers included)."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    async def __call__(self, request: httpx.Request) -> None:
        self.requests.append(request)

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(timeout=httpx.Timeout(10.0, read=60.0), event_hooks={"request": [self]})

    @property
    def streams(self) -> list[httpx.Request]:
        return [r for r in self.requests if r.url.params.get("live") == "sse"]


class Reader:
    """Reads a subscription in a background task into a queue, so a test can act between items."""

    def __init__(self, subscription: Subscription[T]) -> None:
        self.subscription = subscription
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self.seen: list[Any] = []
        self.error: BaseException | None = None
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Reader:
        self._task = asyncio.create_task(self._run())
        return self

    async def _run(self) -> None:
        try:
            async for item in self.subscription:
                await self.queue.put(item)
        except Exception as exc:
            self.error = exc
            await self.queue.put(exc)

    async def next(self) -> Any:
        item = await asyncio.wait_for(self.queue.get(), FAILSAFE_SECONDS)
        self.seen.append(item)
        return item

    async def until(self, predicate: Callable[[Any], bool]) -> list[Any]:
        """Every item up to and including the first that satisfies ``predicate``."""
        items = []
        while True:
            item = await self.next()
            items.append(item)
            if predicate(item):
                return items
            if isinstance(item, BaseException):
                raise AssertionError(f"the subscription failed: {item!r}") from item

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.subscription.aclose()


async def take_until(subscription: Subscription[T], predicate: Callable[[T], bool]) -> list[T]:
    """Read ``subscription`` in this task up to and including the first item satisfying ``predicate``;
    the subscription stays open (``break`` does not close it)."""
    items: list[T] = []
    async for item in subscription:
        items.append(item)
        if predicate(item):
            return items
    raise AssertionError("the subscription ended")


def of_type(kind: type[Any]) -> Callable[[Any], bool]:
    return lambda item: isinstance(item, kind)


def changes(events: Sequence[StreamEvent]) -> list[str]:
    from syncstream.client import Change

    return [e.message.activity_id for e in events if isinstance(e, Change)]


# -- a scripted server ------------------------------------------------------------------------------------


@dataclass
class Recorded:
    method: str
    target: str
    headers: dict[str, str]

    @property
    def url(self) -> httpx.URL:
        return httpx.URL("http://scripted" + self.target)


def sse(*frames: str) -> bytes:
    """A 200 event stream made of ``frames`` (each already ending with a blank line); the connection
    closes after them."""
    head = (
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
        b"connection: close\r\n\r\n"
    )
    return head + "".join(frames).encode()


def change(activity_id: int, name: str = "x") -> str:
    message = {
        "activityId": str(activity_id),
        "action": "create",
        "entityType": "attachment",
        "entityId": f"att_{activity_id}",
        "organizationId": "org_1",
        "projectId": None,
        "changedKeys": None,
        "createdAt": "2026-11-27T19:00:00.000Z",
        "tx": None,
        "data": {"id": f"att_{activity_id}", "name": name},
    }
    return f"event: change\nid: {activity_id}\ndata: {orjson.dumps(message).decode()}\n\n"


def offset(cursor: int | None) -> str:
    body = orjson.dumps({"cursor": None if cursor is None else str(cursor)}).decode()
    return f"event: offset\ndata: {body}\n\n"


def error(type_: str, status: int, detail: str = "") -> str:
    body = {"type": type_, "title": type_, "status": status, "detail": detail}
    return f"event: error\ndata: {orjson.dumps(body).decode()}\n\n"


def problem(status: int, type_: str, detail: str = "", headers: dict[str, str] | None = None) -> bytes:
    body = orjson.dumps({"type": type_, "title": type_, "status": status, "detail": detail})
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    return (
        f"HTTP/1.1 {status} X\r\ncontent-type: application/problem+json\r\ncontent-length: {len(body)}\r\n"
        f"connection: close\r\n{extra}\r\n"
    ).encode() + body


@dataclass
class ScriptedServer:
    """An HTTP/1.1 server on a real loopback socket that answers the n-th request with the n-th scripted
    response and closes the connection; requests past the script wait until the server closes.

    For the client's reactions to answers the real server gives only in rare states (a must_refetch right
    after a reset, a slow_consumer cut, a replayed frame): the client still talks over a real socket.
    """

    script: list[bytes]
    requests: list[Recorded] = field(default_factory=list)
    arrived: asyncio.Condition = field(default_factory=asyncio.Condition)
    _server: asyncio.Server | None = None
    _closing: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode().split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            headers = {
                k.strip().lower(): v.strip()
                for k, _, v in (line.partition(":") for line in lines[1:] if line)
            }
            async with self.arrived:
                index = len(self.requests)
                self.requests.append(Recorded(method, target, headers))
                self.arrived.notify_all()
            if index < len(self.script):
                writer.write(self.script[index])
                await writer.drain()
            else:
                await self._closing.wait()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def wait_for_requests(self, count: int) -> None:
        async with self.arrived:
            await asyncio.wait_for(
                self.arrived.wait_for(lambda: len(self.requests) >= count), FAILSAFE_SECONDS
            )

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[ScriptedServer]:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        try:
            yield self
        finally:
            self._closing.set()
            self._server.close()
            await self._server.wait_closed()


async def start_server_process(database_url: str, **env: str) -> ServerProcess:
    """``ServerProcess.start`` blocks while the server boots: run it off the event loop, so the streams
    under test keep running meanwhile."""
    process = ServerProcess(database_url=database_url, env=env)
    return await asyncio.to_thread(process.start)
