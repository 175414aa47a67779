"""The browser client (``/client.js``) in real Chromium against a real server: catch-up then live, the live
collection, its own writes, must_refetch, forbidden, and resuming across server restarts losing nothing."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from console.cdp import Page, chromium
from console.client_page import MEASURE_VARIABLE, append_line, open_client, record, states
from harness import Api, ServerProcess, User, unique


async def org_with_owner(server: ServerProcess) -> tuple[User, Api, str]:
    anonymous = Api(server.url)
    owner = await anonymous.sign_up(name="Browser")
    await anonymous.aclose()
    api = owner.api()
    slug = unique("web")
    await api.ok("POST", "/organizations", 201, json={"name": "Web Org", "slug": slug})
    return owner, api, slug


async def create(api: Api, slug: str, name: str, tx: dict[str, Any] | None = None) -> str:
    body: dict[str, Any] = {"name": name}
    if tx is not None:
        body["tx"] = tx
    created = await api.ok("POST", f"/organizations/{slug}/attachments", 201, json=body)
    return str(created["id"])


async def history(api: Api, slug: str) -> list[dict[str, Any]]:
    page = await api.ok("GET", f"/organizations/{slug}/sync/stream?limit=1000")
    assert not page["hasMore"]
    activities: list[dict[str, Any]] = page["activities"]
    return activities


def stream_options(owner: User, slug: str, **more: Any) -> dict[str, Any]:
    return {"url": f"/organizations/{slug}/sync/stream", "token": owner.token, **more}


def changes_at_least(count: int) -> str:
    return f"window.rec && window.rec.changes.length >= {count}"


async def test_catch_up_then_live_each_change_once_in_order(
    server: ServerProcess, chromium_path: str, tmp_path: Path
) -> None:
    owner, api, slug = await org_with_owner(server)
    first = await create(api, slug, "one.txt")
    await api.ok("PATCH", f"/organizations/{slug}/attachments/{first}", json={"name": "one-v2.txt"})
    await create(api, slug, "two.txt")

    async with chromium(chromium_path, tmp_path / "profile") as page:
        await open_client(page, server.url, stream_options(owner, slug))
        await page.wait_for("window.rec && window.rec.caughtUp.length === 1")
        caught_up = await record(page)
        await create(api, slug, "three.txt")
        await api.ok("DELETE", f"/organizations/{slug}/attachments/{first}", 204)
        await page.wait_for(changes_at_least(5))
        rec = await record(page)
        cursor = await page.evaluate("window.stream.cursor")

    expected = await history(api, slug)
    await api.aclose()
    assert [c["id"] for c in caught_up["changes"]] == [a["activityId"] for a in expected[:3]]
    assert caught_up["caughtUp"] == [expected[2]["activityId"]]
    assert [c["id"] for c in rec["changes"]] == [a["activityId"] for a in expected], "each once, in order"
    assert [c["action"] for c in rec["changes"]] == ["create", "update", "create", "create", "delete"]
    assert [json.loads(c["raw"]) for c in rec["changes"]] == expected, "the server's JSON, as sent"
    assert states(rec)[:3] == ["connecting", "catching-up", "live"]
    assert rec["errors"] == []
    assert rec["refetches"] == []
    assert cursor == expected[-1]["activityId"]
    assert rec["cursors"] == [a["activityId"] for a in expected], "every cursor reported, to be stored"


async def test_live_collection_follows_changes_and_recognises_own_writes(
    server: ServerProcess, chromium_path: str, tmp_path: Path
) -> None:
    owner, api, slug = await org_with_owner(server)
    a = await create(api, slug, "a.txt")
    b = await create(api, slug, "b.txt")
    c = await create(api, slug, "c.txt")
    await api.ok("PATCH", f"/organizations/{slug}/attachments/{b}", json={"name": "b-v2.txt"})
    await api.ok("DELETE", f"/organizations/{slug}/attachments/{a}", 204)

    async with chromium(chromium_path, tmp_path / "profile") as page:
        await open_client(page, server.url, stream_options(owner, slug), collect={"entityType": "attachment"})
        await page.wait_for("window.collection && window.collection.isReady")
        ready = await record(page)

        # A write from this page, with the client's tx: it comes back as its own.
        own = await page.evaluate(
            f"""(async () => {{
                const tx = window.stream.newTx("name");
                const waiting = window.stream.waitForTx(tx.transactionId);
                const response = await fetch("/organizations/{slug}/attachments", {{
                  method: "POST",
                  headers: {{"Content-Type": "application/json", Authorization: "Bearer {owner.token}"}},
                  body: JSON.stringify({{name: "mine.txt", tx}}),
                }});
                const created = await response.json();
                const message = await waiting;
                return {{id: created.id, own: window.stream.isOwn(message), sourceId: message.tx.sourceId,
                         mine: window.stream.sourceId}};
            }})()"""
        )
        # waitForTx after the change already arrived (the write's response can come after its change).
        late = await page.evaluate(
            f"""(async () => {{
                const tx = window.stream.newTx();
                const response = await fetch("/organizations/{slug}/attachments", {{
                  method: "POST",
                  headers: {{"Content-Type": "application/json", Authorization: "Bearer {owner.token}"}},
                  body: JSON.stringify({{name: "late.txt", tx}}),
                }});
                const created = await response.json();
                await new Promise((resolve) => {{
                  if (window.collection.has(created.id)) return resolve();
                  const off = window.collection.subscribe(() => {{
                    if (window.collection.has(created.id)) {{ off(); resolve(); }}
                  }});
                }});
                const message = await window.stream.waitForTx(tx.transactionId);
                return {{id: created.id, echoed: message.entityId}};
            }})()"""
        )
        assert late["echoed"] == late["id"]
        other_tx = {"transactionId": unique("t"), "sourceId": "another-tab", "changedField": None}
        e = await create(api, slug, "theirs.txt", tx=other_tx)
        await api.ok("PATCH", f"/organizations/{slug}/attachments/{c}", json={"name": "c-v2.txt"})
        await api.ok("DELETE", f"/organizations/{slug}/attachments/{b}", 204)
        await page.wait_for(f"window.collection.size === 4 && !window.collection.has({b!r})")
        rec = await record(page)
        names = await page.evaluate(
            "Object.fromEntries([...window.collection].map(([id, v]) => [id, v.name]))"
        )

    await api.aclose()
    assert dict(ready["collection"]).keys() == {b, c}
    assert dict(ready["collection"])[b]["name"] == "b-v2.txt"
    assert own["own"] is True
    assert own["sourceId"] == own["mine"]
    assert names == {c: "c-v2.txt", own["id"]: "mine.txt", late["id"]: "late.txt", e: "theirs.txt"}
    flat = [change for batch in rec["collectionChanges"] for change in batch]
    assert [(x["type"], x["id"]) for x in flat] == [
        ("insert", a),
        ("insert", b),
        ("insert", c),
        ("update", b),
        ("delete", a),
        ("insert", own["id"]),
        ("insert", late["id"]),
        ("insert", e),
        ("update", c),
        ("delete", b),
    ]
    assert [x["own"] for x in flat if x["id"] in (own["id"], e)] == [True, False]
    assert all(batch for batch in rec["collectionChanges"]), "no empty batch is reported"


async def test_must_refetch_drops_the_collection_and_starts_over(
    server: ServerProcess, chromium_path: str, tmp_path: Path
) -> None:
    owner, api, slug = await org_with_owner(server)
    first = await create(api, slug, "kept.txt")
    newest = (await history(api, slug))[-1]["activityId"]
    from_elsewhere = str(int(newest) + 10**9)  # a stored cursor from another history

    async with chromium(chromium_path, tmp_path / "profile") as page:
        await open_client(
            page,
            server.url,
            stream_options(owner, slug, cursor=from_elsewhere),
            collect={"entityType": "attachment"},
        )
        await page.wait_for("window.collection && window.collection.isReady")
        second = await create(api, slug, "after.txt")
        await page.wait_for(f"window.collection.has({second!r})")
        rec = await record(page)
        cursor = await page.evaluate("window.stream.cursor")

    expected = await history(api, slug)
    await api.aclose()
    assert rec["refetches"] == ["must_refetch"]
    assert rec["cursors"][0] is None, "the stored cursor is cleared first"
    assert rec["collectionChanges"][0] == [{"type": "reset"}]
    assert [c["id"] for c in rec["changes"]] == [a["activityId"] for a in expected]
    assert [k for k, _ in rec["collection"]] == [first, second]
    assert cursor == expected[-1]["activityId"]
    assert rec["errors"] == []


async def test_losing_access_closes_the_stream_for_good(
    server: ServerProcess, chromium_path: str, tmp_path: Path
) -> None:
    owner, api, slug = await org_with_owner(server)
    async with chromium(chromium_path, tmp_path / "profile") as page:
        await open_client(page, server.url, stream_options(owner, slug))
        await page.wait_for("window.rec && window.rec.caughtUp.length === 1")
        await api.ok("DELETE", f"/organizations/{slug}", 204)
        await page.wait_for("window.rec.errors.length === 1")
        rec = await record(page)
        state = await page.evaluate("window.stream.state")
    await api.aclose()
    assert rec["errors"] == [{"type": "forbidden", "status": 403}]
    assert state == "closed"
    assert states(rec)[-1] == "closed"


async def test_a_refusal_is_reported_not_retried(
    server: ServerProcess, chromium_path: str, tmp_path: Path
) -> None:
    async with chromium(chromium_path, tmp_path / "profile") as page:
        await open_client(
            page, server.url, {"url": f"/organizations/{unique('nope')}/sync/stream", "token": "bad"}
        )
        await page.wait_for("window.rec && window.rec.errors.length === 1")
        rec = await record(page)
    assert rec["errors"] == [{"type": "unauthorized", "status": 401}]
    assert states(rec) == ["connecting", "closed"]


@pytest.fixture
async def own_server(tmp_path: Path) -> AsyncIterator[ServerProcess]:
    """A server of its own, since the test restarts it."""
    process = ServerProcess(database_url=f"sqlite:///{tmp_path / 'client.db'}")
    await asyncio.to_thread(process.start)
    yield process
    await asyncio.to_thread(process.stop)


async def stream_requests(page: Page) -> asyncio.Queue[dict[str, Any]]:
    """The page's requests from now on, as the browser sent them (headers included)."""
    requests = page.connection.subscribe("Network.requestWillBeSent", page.session)
    await page.send("Network.enable")
    return requests


async def test_resume_across_restarts_loses_nothing(
    own_server: ServerProcess, chromium_path: str, tmp_path: Path
) -> None:
    owner, api, slug = await org_with_owner(own_server)
    written = [await create(api, slug, "before.txt")]
    figures: list[float] = []

    async with chromium(chromium_path, tmp_path / "profile") as page:
        await open_client(
            page, own_server.url, stream_options(owner, slug), collect={"entityType": "attachment"}
        )
        await page.wait_for("window.collection && window.collection.isReady")
        requests = await stream_requests(page)
        for sig in (signal.SIGTERM, signal.SIGKILL):
            written.append(await create(api, slug, f"live-{sig.name}.txt"))
            await page.wait_for(f"window.collection.has({written[-1]!r})")
            connections = await page.evaluate("window.stream.connections")
            cursor = await page.evaluate("window.stream.cursor")
            await asyncio.to_thread(own_server.stop, sig)
            await page.wait_for("window.stream.state === 'reconnecting'")
            await asyncio.to_thread(own_server.start)
            back_ms = time.time() * 1000  # the server answered /health: it is back
            # Written while the browser may still be reconnecting: it must arrive, by catch-up or live.
            await api.aclose()
            api = owner.api()
            written.append(await create(api, slug, f"after-{sig.name}.txt"))
            await page.wait_for(
                f"window.stream.connections > {connections} && window.collection.has({written[-1]!r})"
            )
            live_at = await page.evaluate("window.rec.liveAt[window.rec.liveAt.length - 1]")
            figures.append(max(0.0, live_at - back_ms))
            resumed = [
                r["request"]["headers"].get("Last-Event-ID")
                for r in drain(requests)
                if "/sync/stream" in r["request"]["url"]
            ]
            assert resumed, "the browser reconnected"
            assert set(resumed) == {cursor}, "every reconnection resumes from the cursor"
        rec = await record(page)

    expected = await history(api, slug)
    await api.aclose()
    assert [c["id"] for c in rec["changes"]] == [a["activityId"] for a in expected], "each once, in order"
    assert [c["entityId"] for c in rec["changes"]] == written
    assert [k for k, _ in rec["collection"]] == written
    assert rec["errors"] == []
    assert rec["refetches"] == []
    delays = [s["retryInMs"] for s in rec["states"] if s["retryInMs"] is not None]
    assert delays
    assert max(delays) <= 1000, "a server that is away is looked for at least every second"
    measured = os.environ.get(MEASURE_VARIABLE)
    if measured:
        line = json.dumps({"SIGTERM": figures[0], "SIGKILL": figures[1]}) + "\n"
        await asyncio.to_thread(append_line, Path(measured), line)


def drain(queue: asyncio.Queue[dict[str, Any]]) -> list[dict[str, Any]]:
    items = []
    while not queue.empty():
        items.append(queue.get_nowait())
    return items


# -- a scripted server, for frames and refusals the real one sends only in rare moments ---------------------


class ScriptedServer:
    """A tiny HTTP server on a real socket: serves a page and the client, and answers the stream with the
    next scripted reply (``(status, body)`` or a list of SSE frames), recording each stream request."""

    def __init__(self, replies: list[tuple[int, str] | list[str]]) -> None:
        self.replies = replies
        self.requests: list[dict[str, str]] = []
        self.hold = asyncio.Event()  # the last stream stays open until the test ends
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> ScriptedServer:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.hold.set()
        assert self.server is not None
        self.server.close()

    @property
    def url(self) -> str:
        assert self.server is not None
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        from syncstream.browser import read_asset

        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode().split("\r\n")
            path = lines[0].split(" ")[1]
            headers = {
                k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)
            }
            if path == "/client.js":
                await self._reply(writer, 200, "text/javascript", read_asset("client.js").decode())
            elif not path.startswith("/stream"):
                await self._reply(writer, 200, "text/html", "<!doctype html><title>t</title><body></body>")
            else:
                self.requests.append({"path": path, "last-event-id": headers.get("last-event-id", "")})
                reply = self.replies.pop(0) if self.replies else []
                if isinstance(reply, tuple):
                    await self._reply(writer, reply[0], "application/problem+json", reply[1])
                else:
                    writer.write(
                        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n"
                    )
                    writer.write("".join(reply).encode())
                    await writer.drain()
                    if not self.replies:
                        await self.hold.wait()
        finally:
            writer.close()

    @staticmethod
    async def _reply(writer: asyncio.StreamWriter, status: int, media_type: str, body: str) -> None:
        data = body.encode()
        writer.write(
            f"HTTP/1.1 {status} X\r\ncontent-type: {media_type}\r\ncontent-length: {len(data)}\r\n"
            "connection: close\r\n\r\n".encode()
            + data
        )
        await writer.drain()


def change(activity_id: int) -> str:
    message = {
        "activityId": str(activity_id),
        "action": "create",
        "entityType": "attachment",
        "entityId": f"at_{activity_id}",
        "organizationId": "org_1",
        "projectId": None,
        "changedKeys": None,
        "createdAt": "2026-11-27T19:00:00.000Z",
        "tx": None,
        "data": {"id": f"at_{activity_id}", "name": f"{activity_id}.txt"},
    }
    return f"event: change\nid: {activity_id}\ndata: {json.dumps(message)}\n\n"


def offset(cursor: int) -> str:
    return f'event: offset\ndata: {{"cursor": "{cursor}"}}\n\n'


CLOSE = 'event: close\ndata: {"reason": "shutdown"}\n\n'
UNAVAILABLE = json.dumps(
    {"type": "unavailable", "title": "Service unavailable", "status": 503, "detail": "x"}
)


async def test_a_shutdown_close_frame_reconnects_at_once_with_last_event_id(
    chromium_path: str, tmp_path: Path
) -> None:
    replies: list[tuple[int, str] | list[str]] = [
        ["retry: 5000\n\n", change(1), change(2), offset(2), CLOSE],
        ["retry: 5000\n\n", change(3), offset(3)],
    ]
    async with ScriptedServer(replies) as scripted, chromium(chromium_path, tmp_path / "profile") as page:
        await open_client(page, scripted.url, {"url": "/stream"})
        await page.wait_for("window.rec && window.rec.caughtUp.length === 2")
        rec = await record(page)
    assert [r["last-event-id"] for r in scripted.requests] == ["", "2"]
    assert "offset=-1" in scripted.requests[0]["path"]
    assert "offset=2" in scripted.requests[1]["path"]
    assert [c["id"] for c in rec["changes"]] == ["1", "2", "3"]
    reconnecting = [s for s in rec["states"] if s["state"] == "reconnecting" and s["retryInMs"] is not None]
    assert [(s["reason"], s["retryInMs"]) for s in reconnecting] == [("shutdown", 0)], "not the retry: hint"


async def test_failures_back_off_from_half_a_second_with_jitter(chromium_path: str, tmp_path: Path) -> None:
    replies: list[tuple[int, str] | list[str]] = [
        [change(1), offset(1)],  # live, then the server drops the stream without a close frame
        (503, UNAVAILABLE),
        (503, UNAVAILABLE),
        [change(2), offset(2)],
    ]
    replies[0].append("")  # the connection simply ends
    async with ScriptedServer(replies) as scripted, chromium(chromium_path, tmp_path / "profile") as page:
        await open_client(page, scripted.url, {"url": "/stream"})
        await page.wait_for("window.rec && window.rec.caughtUp.length === 2")
        rec = await record(page)
    delays = [
        s["retryInMs"] for s in rec["states"] if s["state"] == "reconnecting" and s["retryInMs"] is not None
    ]
    assert len(delays) == 3
    for attempt, delay in enumerate(delays):
        ceiling = 500 * 2**attempt
        assert 0.2 * ceiling <= delay <= ceiling, (attempt, delay)
    assert [r["last-event-id"] for r in scripted.requests] == ["", "1", "1", "1"]
    assert [c["id"] for c in rec["changes"]] == ["1", "2"]


async def test_client_assets_are_served(server: ServerProcess) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        script = await http.get("/client.js")
        types = await http.get("/client.d.ts")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert script.headers["access-control-allow-origin"] == "*"
    assert "export class SyncStream" in script.text
    assert types.status_code == 200
    assert "export class LiveCollection" in types.text


async def test_a_slow_consumer_cut_resumes_from_the_cursor(chromium_path: str, tmp_path: Path) -> None:
    slow = json.dumps({"type": "slow_consumer", "title": "Slow consumer", "status": 409, "detail": "x"})
    replies: list[tuple[int, str] | list[str]] = [
        [change(1), offset(1), change(2), f"event: error\ndata: {slow}\n\n"],
        [change(3), offset(3)],
    ]
    async with ScriptedServer(replies) as scripted, chromium(chromium_path, tmp_path / "profile") as page:
        await open_client(page, scripted.url, {"url": "/stream"})
        await page.wait_for("window.rec && window.rec.caughtUp.length === 2")
        rec = await record(page)
    assert [r["last-event-id"] for r in scripted.requests] == ["", "2"]
    assert [c["id"] for c in rec["changes"]] == ["1", "2", "3"]
    assert rec["errors"] == []
    reasons = [
        s["reason"] for s in rec["states"] if s["state"] == "reconnecting" and s["retryInMs"] is not None
    ]
    assert reasons == ["slow_consumer"]
