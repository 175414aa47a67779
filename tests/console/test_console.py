"""The live console, end to end in headless Chromium: sign in, pick an organization, watch changes
arrive through the browser client (/client.js), and lose nothing across reconnections."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from console.cdp import Page, chromium
from console.client_page import MEASURE_VARIABLE, append_line
from harness import Api, ServerProcess, unique

PASSWORD = "correct-horse"


@pytest.fixture
async def console_server(tmp_path: Path) -> AsyncIterator[ServerProcess]:
    """A server of its own, since the test restarts it. A one-second retry hint: a browser reconnecting
    sooner could reach it while it is still shutting down."""
    process = ServerProcess(
        database_url=f"sqlite:///{tmp_path / 'console.db'}", env={"SYNCSTREAM_RETRY_MS": "1000"}
    )
    await asyncio.to_thread(process.start)
    yield process
    await asyncio.to_thread(process.stop)


async def rows(page: Page) -> list[dict[str, Any]]:
    """The changes shown, oldest first."""
    shown = await page.evaluate(
        "[...document.querySelectorAll('#changes li')].map(li => ({...li.dataset, text: li.textContent}))"
    )
    return list(reversed(shown))


async def stream_state(page: Page) -> dict[str, str]:
    state: dict[str, str] = await page.evaluate("({...document.getElementById('stream').dataset})")
    return state


def shows(entity_id: str) -> str:
    """A condition: the change of this entity is on the page."""
    return f"document.querySelector('#changes li[data-entity-id=\"{entity_id}\"]')"


async def click(page: Page, element_id: str) -> None:
    await page.evaluate(f"document.getElementById({element_id!r}).click()")


async def test_console_shows_changes_live_and_loses_nothing_across_reconnections(
    console_server: ServerProcess, chromium_path: str, tmp_path: Path
) -> None:
    api = Api(console_server.url)
    owner = await api.sign_up(name="Console")
    await api.aclose()
    writer = owner.api()
    slug = unique("console")
    await writer.ok("POST", "/organizations", 201, json={"name": "Console Org", "slug": slug})

    async def write(name: str) -> str:
        created = await writer.ok("POST", f"/organizations/{slug}/attachments", 201, json={"name": name})
        return str(created["id"])

    written = [await write("before-opening.txt")]

    async with chromium(chromium_path, tmp_path / "profile") as page:
        await page.navigate(f"{console_server.url}/console")
        await page.wait_for("document.body.dataset.ready === 'true'")
        assert await page.evaluate("document.getElementById('sign-in').hidden") is False

        # Sign in: the server's HttpOnly cookie is what authenticates the EventSource.
        await page.evaluate(
            f"""(() => {{
                document.getElementById('email').value = {owner.email!r};
                document.getElementById('password').value = {PASSWORD!r};
                document.getElementById('sign-in-form').requestSubmit();
            }})()"""
        )
        await page.wait_for("document.getElementById('account').dataset.signedIn === 'true'")
        assert await page.evaluate("document.cookie") == "", "the session cookie must be HttpOnly"
        await page.wait_for(f"document.querySelector('#org-select option[value=\"{slug}\"]')")

        # Pick the organization: history, then live.
        await page.evaluate(
            f"""(() => {{
                const select = document.getElementById('org-select');
                select.value = {slug!r};
                select.dispatchEvent(new Event('change'));
            }})()"""
        )
        await page.wait_for("document.getElementById('stream').dataset.state === 'live'")
        written.append(await write("live.txt"))
        await page.wait_for(shows(written[-1]))

        # Pause (the page closes its stream), write meanwhile, resume from the cursor.
        await click(page, "pause")
        await page.wait_for("document.getElementById('stream').dataset.state === 'paused'")
        assert (await stream_state(page))["openSources"] == "0"
        written.append(await write("while-paused-1.txt"))
        written.append(await write("while-paused-2.txt"))
        await click(page, "pause")
        await page.wait_for(shows(written[-1]))

        # Restart the server: the client reconnects by itself, with Last-Event-ID.
        connections = int((await stream_state(page))["connections"])
        await asyncio.to_thread(console_server.stop)
        await page.wait_for("document.getElementById('stream').dataset.state === 'reconnecting'")
        await asyncio.to_thread(console_server.start)
        back_ms = time.time() * 1000  # the server answered /health: it is back
        await page.wait_for(
            f"""document.getElementById('stream').dataset.state === 'live'
                && Number(document.getElementById('stream').dataset.connections) > {connections}"""
        )
        live_at = int((await stream_state(page))["liveAt"])
        written.append(await write("after-restart.txt"))
        await page.wait_for(shows(written[-1]))

        shown = await rows(page)
        state = await stream_state(page)

        # Leaving the view closes its stream: the pages view has its own, and only that one is open.
        await click(page, "view-pages")
        await page.wait_for(
            "document.getElementById('stream').dataset.view === 'pages'"
            " && document.getElementById('stream').dataset.state === 'live'"
        )
        pages_state = await stream_state(page)

    page_of_activities = await writer.ok("GET", f"/organizations/{slug}/sync/stream")
    await writer.aclose()

    ids = [row["activityId"] for row in shown]
    assert ids == [a["activityId"] for a in page_of_activities["activities"]], "each change once, in order"
    assert [row["entityId"] for row in shown] == written
    assert "live.txt" in shown[1]["text"]
    assert state["cursor"] == ids[-1]
    assert state["count"] == str(len(written))
    assert state["openSources"] == "1"
    assert pages_state["openSources"] == "1"
    assert pages_state["org"] == ""
    measured = os.environ.get(MEASURE_VARIABLE)
    if measured:
        line = json.dumps({"console": max(0.0, live_at - back_ms)}) + "\n"
        await asyncio.to_thread(append_line, Path(measured), line)


async def test_console_assets_are_served_with_a_strict_policy(server: ServerProcess) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        page = await http.get("/console")
        script = await http.get("/console/static/console.js")
        modules = [await http.get(f"/console/static/{name}") for name in ("rows.js", "server.js")]
        missing = await http.get("/console/static/../../app.py")
        unknown = await http.get("/console/static/secrets.txt")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert 'src="/console/static/console.js"' in page.text
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert 'from "/client.js"' in script.text, "the console runs on the browser client"
    assert all(m.status_code == 200 for m in modules)
    assert 'type="module"' in page.text
    assert missing.status_code == 404
    assert unknown.status_code == 404
    assert unknown.headers["content-type"] == "application/problem+json"
