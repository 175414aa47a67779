"""``/docs`` and ``/redoc`` in real Chromium: every operation of the document is listed, and the
page fetched nothing from anywhere but this server (no CDN: the assets are installed)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from console.cdp import Page, chromium
from harness import ServerProcess

METHODS = {"get", "post", "put", "patch", "delete"}


@pytest.fixture(scope="module")
async def docs_server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ServerProcess]:
    path = tmp_path_factory.mktemp("api-docs") / "docs.db"
    process = ServerProcess(database_url=f"sqlite:///{path}")
    await asyncio.to_thread(process.start)
    yield process
    await asyncio.to_thread(process.stop)


def operation_count(server: ServerProcess) -> int:
    document: dict[str, Any] = httpx.get(f"{server.url}/openapi.json", timeout=30).json()
    return sum(1 for item in document["paths"].values() for method in item if method in METHODS)


@contextlib.asynccontextmanager
async def offline(page: Page) -> AsyncIterator[list[str]]:
    """Record every URL the page requests (the list is filled as they are sent); requests
    anywhere but the page's own origin are failed on purpose, so a page that needs one
    cannot pass by luck."""
    urls: list[str] = []
    requested = page.connection.subscribe("Network.requestWillBeSent", page.session)
    paused = page.connection.subscribe("Fetch.requestPaused", page.session)
    await page.send("Network.enable")
    await page.send("Fetch.enable", {"patterns": [{"urlPattern": "*"}]})

    async def record() -> None:
        while True:
            urls.append((await requested.get())["request"]["url"])

    async def gatekeeper() -> None:
        while True:
            event = await paused.get()
            if event["request"]["url"].startswith(("http://127.0.0.1:", "blob:http://127.0.0.1:", "data:")):
                await page.send("Fetch.continueRequest", {"requestId": event["requestId"]})
            else:
                failed = {"requestId": event["requestId"], "errorReason": "BlockedByClient"}
                await page.send("Fetch.failRequest", failed)

    tasks = [asyncio.create_task(record()), asyncio.create_task(gatekeeper())]
    try:
        yield urls
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def foreign(urls: list[str], server: ServerProcess) -> list[str]:
    """The URLs that are neither this server's nor made inside the page (``data:``, and the
    ``blob:`` of this origin that ReDoc starts its search worker from)."""
    local = (server.url + "/", f"blob:{server.url}/", "data:")
    return [u for u in urls if not u.startswith(local)]


async def test_swagger_ui_lists_every_operation_offline(
    docs_server: ServerProcess, chromium_path: str, tmp_path: Path
) -> None:
    expected = operation_count(docs_server)
    assert expected >= 25
    async with chromium(chromium_path, tmp_path / "profile") as page, offline(page) as urls:
        await page.navigate(f"{docs_server.url}/docs")
        shown = await page.wait_for(
            f"document.querySelectorAll('.opblock').length >= {expected} && "
            "document.querySelectorAll('.opblock').length"
        )
        titles = await page.evaluate(
            "[...document.querySelectorAll('.opblock-summary-path')]"
            ".map(e => e.dataset.path || e.textContent)"
        )
    assert shown == expected
    assert any("/sync/stream" in title for title in titles), titles
    assert f"{docs_server.url}/openapi.json" in urls, urls
    assert foreign(urls, docs_server) == []


async def test_redoc_lists_every_operation_offline(
    docs_server: ServerProcess, chromium_path: str, tmp_path: Path
) -> None:
    expected = operation_count(docs_server)
    async with chromium(chromium_path, tmp_path / "profile") as page, offline(page) as urls:
        await page.navigate(f"{docs_server.url}/redoc")
        shown = await page.wait_for(
            f"document.querySelectorAll('[data-section-id^=\"operation/\"]').length >= {expected} && "
            "document.querySelectorAll('[data-section-id^=\"operation/\"]').length"
        )
    assert shown == expected
    assert f"{docs_server.url}/openapi.json" in urls, urls
    assert foreign(urls, docs_server) == []


def test_the_assets_are_served_from_the_package(docs_server: ServerProcess) -> None:
    html = httpx.get(f"{docs_server.url}/docs", timeout=30).text
    assert "cdn." not in html
    assert "/docs/assets/swagger-ui-bundle.js" in html
    redoc = httpx.get(f"{docs_server.url}/redoc", timeout=30).text
    assert "fonts.googleapis" not in redoc
    assert "/docs/assets/redoc.standalone.js" in redoc
    script = httpx.get(f"{docs_server.url}/docs/assets/swagger-ui-bundle.js", timeout=30)
    assert script.status_code == 200
    assert "javascript" in script.headers["content-type"]
    assert len(script.content) > 100_000
