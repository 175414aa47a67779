"""The console as an inspector, in headless Chromium: a row's full JSON, filters, where to start, clear, the
terminal commands for the view, the server panel, sign-out, and a 390 px wide screen."""

from __future__ import annotations

import asyncio
import base64
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from api.support import PASSWORD, create_user_with_cli
from console.cdp import Page, chromium
from harness import Api, ServerProcess, User, unique

#: Set to a folder (docs/images) to keep the screenshots there; by default they go to the test's tmp_path.
SCREENSHOTS_VARIABLE = "SYNCSTREAM_SCREENSHOTS"
STREAM = "document.getElementById('stream').dataset"


@pytest.fixture
async def inspector_server(tmp_path: Path) -> AsyncIterator[ServerProcess]:
    process = ServerProcess(database_url=f"sqlite:///{tmp_path / 'inspector.db'}")
    await asyncio.to_thread(process.start)
    yield process
    await asyncio.to_thread(process.stop)


async def admin_with_org(server: ServerProcess) -> tuple[str, Api, str]:
    created = await asyncio.to_thread(create_user_with_cli, server.database_url, admin=True)
    email = created["user"]["email"]
    api = User(server.url, created["user"]["id"], email, created["token"]).api()
    slug = unique("insp")
    await api.ok("POST", "/organizations", 201, json={"name": "Inspected", "slug": slug})
    return email, api, slug


async def create(api: Api, slug: str, name: str, **more: Any) -> dict[str, Any]:
    created: dict[str, Any] = await api.ok(
        "POST", f"/organizations/{slug}/attachments", 201, json={"name": name, **more}
    )
    return created


async def sign_in_and_open(page: Page, server: ServerProcess, email: str, slug: str) -> None:
    await page.navigate(f"{server.url}/console")
    await page.wait_for("document.body.dataset.ready === 'true'")
    await page.evaluate(
        f"""(() => {{
            document.getElementById('email').value = {email!r};
            document.getElementById('password').value = {PASSWORD!r};
            document.getElementById('sign-in-form').requestSubmit();
        }})()"""
    )
    await page.wait_for(f"document.querySelector('#org-select option[value=\"{slug}\"]')")
    await set_value(page, "org-select", slug, "change")
    await page.wait_for(f"{STREAM}.state === 'live'")


async def set_value(page: Page, element_id: str, value: str, event: str = "input") -> None:
    await page.evaluate(
        f"""(() => {{
            const element = document.getElementById({element_id!r});
            element.value = {value!r};
            element.dispatchEvent(new Event({event!r}, {{bubbles: true}}));
        }})()"""
    )


async def click(page: Page, selector: str) -> None:
    await page.evaluate(f"document.querySelector({selector!r}).click()")


async def visible_ids(page: Page) -> list[str]:
    ids: list[str] = await page.evaluate(
        "[...document.querySelectorAll('#changes li:not([hidden])')].map(li => li.dataset.entityId).reverse()"
    )
    return ids


async def test_console_inspects_filters_and_restarts_a_view(
    inspector_server: ServerProcess, chromium_path: str, tmp_path: Path
) -> None:
    email, api, slug = await admin_with_org(inspector_server)
    first = await create(api, slug, "plan.pdf")
    await api.ok("PATCH", f"/organizations/{slug}/attachments/{first['id']}", json={"name": "plan-v2.pdf"})
    second = await create(api, slug, "notes.txt", tx={"transactionId": "t-1", "sourceId": "tab-9"})
    activities = (await api.ok("GET", f"/organizations/{slug}/sync/stream"))["activities"]

    async with chromium(chromium_path, tmp_path / "profile") as page:
        await sign_in_and_open(page, inspector_server, email, slug)
        await page.wait_for(f"{STREAM}.count === '3'")

        # Timestamps on a 24-hour clock with milliseconds; the full ISO time on hover.
        times = await page.evaluate(
            "[...document.querySelectorAll('#changes .time')].map(s => [s.textContent, s.title])"
        )
        for shown, iso in times:
            assert re.fullmatch(r"\d{2}:\d{2}:\d{2}\.\d{3}", shown), shown
            assert iso.endswith("Z")

        # A click on a row shows its full JSON, as the server sent it; a second click hides it.
        update = f"#changes li[data-activity-id='{activities[1]['activityId']}']"
        await click(page, update)
        await page.wait_for(f'document.querySelector("{update} pre")')
        shown_json = await page.evaluate(f'JSON.parse(document.querySelector("{update} pre").textContent)')
        assert shown_json == activities[1]
        await click(page, update)
        await page.wait_for(f'!document.querySelector("{update} pre")')

        # Filters: by action, by text (anywhere in the JSON), by type.
        await set_value(page, "filter-action", "update")
        await page.wait_for(f"{STREAM}.shown === '1'")
        assert await visible_ids(page) == [first["id"]]
        await set_value(page, "filter-action", "")
        await set_value(page, "filter-text", "TAB-9")
        await page.wait_for(f"{STREAM}.shown === '1'")
        assert await visible_ids(page) == [second["id"]]
        await set_value(page, "filter-text", "")
        await set_value(page, "filter-type", "page")
        await page.wait_for(f"{STREAM}.shown === '0'")

        # The terminal commands for this view: the type filter is entityTypes, the action a jq filter.
        await set_value(page, "filter-action", "delete")
        await click(page, "#copy-curl")
        await page.wait_for("document.getElementById('command').textContent.startsWith('curl')")
        curl = await page.evaluate("document.getElementById('command').textContent")
        await click(page, "#copy-tail")
        await page.wait_for("document.getElementById('command').textContent.startsWith('syncstream tail')")
        tail = await page.evaluate("document.getElementById('command').textContent")
        url = f"{inspector_server.url}/organizations/{slug}/sync/stream"
        auth = '-H "Authorization: Bearer $SYNCSTREAM_TOKEN"'
        assert curl == f"curl -N {auth} '{url}?entityTypes=page&live=sse&offset=-1'"
        assert tail == (
            f"syncstream tail '{url}?entityTypes=page' --offset -1 --json"
            " | jq -c 'select(.action == \"delete\")'"
        )
        await set_value(page, "filter-type", "")
        await set_value(page, "filter-action", "")
        await page.wait_for(f"{STREAM}.shown === '3'")

        # Start from now: nothing old, then what is written.
        await set_value(page, "start-from", "now", "change")
        await click(page, "#start-apply")
        await page.wait_for(f"{STREAM}.state === 'live' && {STREAM}.count === '0'")
        third = await create(api, slug, "live.txt")
        await page.wait_for(f"{STREAM}.count === '1'")
        assert await visible_ids(page) == [third["id"]]

        # Start after an activity ID: only what came after it.
        await set_value(page, "start-from", "id", "change")
        await set_value(page, "start-id", activities[1]["activityId"])
        await click(page, "#start-apply")
        await page.wait_for(f"{STREAM}.state === 'live' && {STREAM}.count === '2'")
        assert await visible_ids(page) == [second["id"], third["id"]]

        # Clear: the list empties, the stream goes on.
        await click(page, "#clear")
        await page.wait_for(f"{STREAM}.count === '0' && {STREAM}.shown === '0'")
        fourth = await create(api, slug, "after-clear.txt")
        await page.wait_for(f"{STREAM}.count === '1'")
        assert await visible_ids(page) == [fourth["id"]]

        # The server panel: this org's stream with its one subscriber (this page).
        assert await page.evaluate("document.getElementById('toggle-server').hidden") is False
        await click(page, "#toggle-server")
        await page.wait_for(f"document.querySelector('#server-streams tr[data-slug=\"{slug}\"]')")
        panel = await page.evaluate(
            f"""(() => {{
                const row = document.querySelector('#server-streams tr[data-slug="{slug}"]');
                return {{subscribers: row.dataset.subscribers, text: row.textContent,
                         health: document.getElementById('server-health').textContent}};
            }})()"""
        )
        assert panel["subscribers"] == "1"
        assert "Inspected" in panel["text"]
        assert panel["health"].startswith("ok")

        # Sign out: the org's rows go, and nothing is left to click.
        await click(page, "#sign-out")
        await page.wait_for("document.getElementById('account').dataset.signedIn === 'false'")
        after = await page.evaluate(
            """(() => ({
                state: document.getElementById('stream').dataset.state,
                rows: document.querySelectorAll('#changes li').length,
                enabled: ['pause', 'reconnect', 'clear', 'start-from', 'start-apply', 'copy-curl',
                          'copy-tail', 'org-select'].filter((id) => !document.getElementById(id).disabled),
                server: [document.getElementById('toggle-server').hidden,
                         document.getElementById('server').hidden],
                openSources: document.getElementById('stream').dataset.openSources,
            }))()"""
        )
    await api.aclose()
    assert after == {"state": "closed", "rows": 0, "enabled": [], "server": [True, True], "openSources": "0"}


async def screenshot(page: Page, path: Path) -> None:
    shot = await page.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
    await asyncio.to_thread(path.write_bytes, base64.b64decode(shot["data"]))


@pytest.mark.parametrize(
    ("width", "height", "name"), [(1280, 900, "console-desktop"), (390, 844, "console-390")]
)
async def test_console_fits_the_screen(
    inspector_server: ServerProcess, chromium_path: str, tmp_path: Path, width: int, height: int, name: str
) -> None:
    email, api, slug = await admin_with_org(inspector_server)
    first = await create(api, slug, "quarterly-report-with-a-rather-long-name-final-v3.pdf")
    await api.ok(
        "PATCH", f"/organizations/{slug}/attachments/{first['id']}", json={"name": "quarterly-report.pdf"}
    )
    await create(api, slug, "diagram.png", tx={"transactionId": "7f3c2a9e-tx", "sourceId": "tab-42"})
    await api.ok("DELETE", f"/organizations/{slug}/attachments/{first['id']}", 204)
    await create(api, slug, "notes.md")

    async with chromium(chromium_path, tmp_path / "profile") as page:
        await page.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 500},
        )
        await sign_in_and_open(page, inspector_server, email, slug)
        await page.wait_for(f"{STREAM}.count === '5'")
        await click(page, "#toggle-server")
        await page.wait_for("document.getElementById('server').dataset.loaded === 'true'")
        await click(page, "#changes li:nth-child(3)")
        await page.wait_for("document.querySelector('#changes pre')")
        overflow = await page.evaluate(
            """(() => ({
                page: document.documentElement.scrollWidth - document.documentElement.clientWidth,
                rows: [...document.querySelectorAll('#changes li, #changes pre, #server tr')]
                  .filter((e) => e.scrollWidth > e.clientWidth + 1
                                 || e.getBoundingClientRect().right > innerWidth)
                  .map((e) => e.outerHTML.slice(0, 120)),
            }))()"""
        )
        folder = Path(os.environ.get(SCREENSHOTS_VARIABLE) or tmp_path)
        await screenshot(page, folder / f"{name}.png")
    await api.aclose()
    assert overflow == {"page": 0, "rows": []}, "nothing is clipped or scrolls sideways"
