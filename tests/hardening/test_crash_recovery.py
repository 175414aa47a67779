"""The server killed with SIGKILL in the middle of a burst of writes, then started again on
the same database: nothing committed is lost, and clients resume with ``Last-Event-ID``.

"Committed" is what a writer was told: a write that got its 201. Writes in flight at the
kill may or may not have committed (their client never heard); whichever it was, the log
says so, and every stream must carry exactly what the log has — every 201'd write among
it — once each, in order, across the crash.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from api.support import create_org
from harness import Api, ServerProcess, unique

from .support import BACKENDS, assert_exactly_once_in_order, everything, fresh_database, open_stream

pytestmark = pytest.mark.asyncio(loop_scope="session")

WRITERS = 8
KILL_AFTER = 60  # committed writes before the kill; the writers are still going when it lands
SUBSCRIBERS = 4


@pytest.fixture(params=BACKENDS)
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    async with fresh_database(request.param, tmp_path) as url:
        yield url


async def test_sigkill_mid_burst_then_restart_loses_nothing(database: str) -> None:
    first = ServerProcess(database_url=database)
    try:  # whatever fails, no server is left behind (stop is a no-op once killed)
        await asyncio.to_thread(first.start)
        api = Api(first.url)
        owner = await api.sign_up()
        org = await create_org(api, owner.token)
        await api.aclose()
        path = f"/organizations/{org['id']}/sync/stream"
        streams = [
            await open_stream(first.port, f"{path}?offset=now&live=sse", token=owner.token)
            for _ in range(SUBSCRIBERS)
        ]
        starts = [int(s.offsets[0]["cursor"] or 0) for s in streams]

        committed: list[str] = []
        enough = asyncio.Event()

        async def writer(index: int) -> None:
            async with httpx.AsyncClient(base_url=first.url, timeout=30) as client:
                for n in range(10_000):
                    try:
                        response = await client.post(
                            f"/organizations/{org['id']}/attachments",
                            json={"name": f"w{index}-{n}"},
                            headers={"Authorization": f"Bearer {owner.token}"},
                        )
                    except httpx.HTTPError:
                        return  # the server is gone; whether this one committed, only the log knows
                    assert response.status_code == 201, response.text
                    committed.append(response.json()["id"])
                    if len(committed) >= KILL_AFTER:
                        enough.set()

        writers = [asyncio.create_task(writer(i)) for i in range(WRITERS)]
        await enough.wait()
        await asyncio.to_thread(first.stop, signal.SIGKILL)
        await asyncio.gather(*writers)
        for stream in streams:
            await asyncio.wait_for(stream.closed, 30)
        assert len(committed) >= KILL_AFTER

        # The same database (on another port: nothing else can have taken it meanwhile, as it
        # could the old one on a shared machine; clients come back through the load balancer).
        second = ServerProcess(database_url=database)
        try:
            await asyncio.to_thread(second.start)
            resumed = [
                await open_stream(
                    second.port, f"{path}?live=sse", token=owner.token, last_event_id=s.last_id or start
                )
                for s, start in zip(streams, starts, strict=True)
            ]
            api = Api(second.url)
            sentinel = await api.ok(
                "POST",
                f"/organizations/{org['id']}/attachments",
                201,
                json={"name": unique("after")},
                token=owner.token,
            )
            for stream in resumed:
                await stream.until(lambda s: any(c.message["entityId"] == sentinel["id"] for c in s.changes))
                stream.abort()
            truth = await everything(api, path, owner.token)
            await api.aclose()
        finally:
            await asyncio.to_thread(second.stop)

        logged = {m["entityId"] for m in truth}
        assert set(committed) <= logged, "a write that got its 201 is not in the log after the crash"
        for n, (before, after, start) in enumerate(zip(streams, resumed, starts, strict=True)):
            history = before.changes + after.changes
            ids = [c.id for c in history]
            assert_exactly_once_in_order(ids, f"subscriber {n}")
            assert ids == [int(m["activityId"]) for m in truth if int(m["activityId"]) > start], (
                f"subscriber {n}"
            )
            assert {c.message["entityId"] for c in history} >= set(committed)
            assert not before.errors
            assert not after.errors
    finally:
        await asyncio.to_thread(first.stop)
