"""``syncstream tail``: a subprocess following the real server, as a person or a script would run it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest

from harness import Api, ServerProcess, unique
from syncstream.client import Change, StreamMessage, StreamState
from syncstream.tail import TailStatus, format_change

FAILSAFE_SECONDS = 30.0


class Tail:
    """A running ``syncstream tail`` whose stdout is read line by line."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    async def line(self) -> bytes:
        assert self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), FAILSAFE_SECONDS)
        assert line, "tail exited: " + (await self.stop())[1].decode()
        return line

    async def status(self, word: str) -> None:
        """Wait until the status printed on stderr mentions ``word``."""
        assert self.process.stderr is not None
        while True:
            line = await asyncio.wait_for(self.process.stderr.readline(), FAILSAFE_SECONDS)
            assert line, "tail exited"
            if word.encode() in line:
                return

    async def stop(self) -> tuple[bytes, bytes]:
        """Interrupt it (Ctrl-C) and return the rest of stdout and all of stderr."""
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGINT)
        stdout, stderr = await asyncio.wait_for(self.process.communicate(), FAILSAFE_SECONDS)
        return stdout, stderr


@contextlib.asynccontextmanager
async def tail(*args: str, token: str | None = None) -> AsyncIterator[Tail]:
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("SYNCSTREAM_TOKEN", None)
    if token is not None:
        env["SYNCSTREAM_TOKEN"] = token
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "syncstream.cli",
        "tail",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    running = Tail(process)
    try:
        yield running
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def new_org(base_url: str) -> tuple[Api, str]:
    owner = await Api(base_url).sign_up()
    api = owner.api()
    org = await api.ok("POST", "/organizations", 201, json={"name": "Tail", "slug": unique("t")})
    return api, org["slug"]


async def test_json_mode_prints_each_message_as_one_json_line_and_nothing_else(server: ServerProcess) -> None:
    api, slug = await new_org(server.url)
    url = f"{server.url}/organizations/{slug}/sync/stream"
    tx = {"transactionId": unique("t"), "sourceId": "test", "changedField": None}
    async with tail(url, "--json", token=api.token) as running:
        created = await api.ok(
            "POST", f"/organizations/{slug}/attachments", 201, json={"name": "a.txt", "tx": tx}
        )
        line = await running.line()
        await api.ok(
            "PATCH", f"/organizations/{slug}/attachments/{created['id']}", 200, json={"name": "b.txt"}
        )
        second = await running.line()
        rest, stderr = await running.stop()
    page = await api.ok("GET", f"/organizations/{slug}/sync/stream")
    await api.aclose()

    assert [orjson.loads(line), orjson.loads(second)] == page["activities"]
    message = StreamMessage.model_validate_json(line)
    assert (message.entity_id, message.tx and message.tx.transaction_id) == (
        created["id"],
        tx["transactionId"],
    )
    assert rest == b"", "only messages go to stdout"
    assert running.process.returncode == 130
    assert b"live" in stderr  # the status went to stderr


async def test_human_mode_prints_a_readable_line(server: ServerProcess) -> None:
    api, slug = await new_org(server.url)
    async with tail(f"{server.url}/organizations/{slug}/sync/stream", "--token", str(api.token)) as running:
        created = await api.ok(
            "POST", f"/organizations/{slug}/attachments", 201, json={"name": "[bold]plan.pdf"}
        )
        line = (await running.line()).decode()
        await running.stop()
    await api.aclose()
    assert "create" in line
    assert "attachment" in line
    assert created["id"] in line
    assert "'[bold]plan.pdf'" in line  # markup in names is printed, not interpreted


async def test_offset_now_skips_history(server: ServerProcess) -> None:
    api, slug = await new_org(server.url)
    await api.ok("POST", f"/organizations/{slug}/attachments", 201, json={"name": "old"})
    url = f"{server.url}/organizations/{slug}/sync/stream"
    async with tail(url, "--json", "--offset", "now", token=api.token) as running:
        await running.status("live")  # what is written from now on is live, not history
        await api.ok("POST", f"/organizations/{slug}/attachments", 201, json={"name": "new"})
        line = orjson.loads(await running.line())
        await running.stop()
    await api.aclose()
    assert line["data"]["name"] == "new"


async def test_without_a_token_it_says_why_and_exits_1(server: ServerProcess) -> None:
    api, slug = await new_org(server.url)
    await api.aclose()
    async with tail(f"{server.url}/organizations/{slug}/sync/stream", "--json") as running:
        stdout, stderr = await asyncio.wait_for(running.process.communicate(), FAILSAFE_SECONDS)
    assert running.process.returncode == 1
    assert stdout == b""
    assert b"Unauthorized" in stderr


async def test_resumes_after_the_server_restarts(tmp_path: Path) -> None:
    process = ServerProcess(database_url=f"sqlite:///{tmp_path / 'tail.db'}")
    await asyncio.to_thread(process.start)
    try:
        api, slug = await new_org(process.url)
        async with tail(
            f"{process.url}/organizations/{slug}/sync/stream", "--json", token=api.token
        ) as running:
            await api.ok("POST", f"/organizations/{slug}/attachments", 201, json={"name": "before"})
            before = orjson.loads(await running.line())
            await asyncio.to_thread(process.stop)
            await asyncio.to_thread(process.start)
            await api.ok("POST", f"/organizations/{slug}/attachments", 201, json={"name": "after"})
            after = orjson.loads(await running.line())
            _, stderr = await running.stop()
        await api.aclose()
    finally:
        process.stop()
    assert (before["data"]["name"], after["data"]["name"]) == ("before", "after")
    assert int(after["activityId"]) > int(before["activityId"])
    assert b"reconnecting" in stderr


def test_format_change_and_status() -> None:
    message = StreamMessage.model_validate(
        {
            "activityId": "43",
            "action": "update",
            "entityType": "page",
            "entityId": "pg_1",
            "changedKeys": ["title", "content"],
            "createdAt": "2026-11-27T19:00:05.120Z",
            "data": {"title": "Welcome"},
        }
    )
    text = format_change(message).plain
    assert "#43 update page pg_1  title, content  'Welcome'" in text
    now = [100.0]
    status = TailStatus("http://x/pages/stream", clock=lambda: now[0])
    assert "connecting" in status.render().plain
    assert status.rate() == 0.0
    for _ in range(4):
        status.observe(Change(message, "{}"), StreamState.LIVE, "43")
    assert status.rate() == 4.0  # over at least one second, not per millisecond
    now[0] = 104.0
    assert status.rate() == 1.0
    now[0] = 111.0
    assert status.rate() == 0.0  # older than the window
    assert "live" in status.render().plain
    assert "cursor 43" in status.render().plain
    assert status.received == 4


@pytest.mark.parametrize("url", ["/pages/stream", "pages"])
def test_a_relative_url_is_refused(url: str) -> None:
    from syncstream.tail import run

    assert run(url) == 2
