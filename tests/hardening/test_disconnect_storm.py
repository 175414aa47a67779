"""A disconnect storm: hundreds of clients drop at once (RST, as when a load balancer or a
mobile network goes) and all reconnect at once with ``Last-Event-ID`` while writes go on.

Nothing may be lost or repeated for any of them, and afterwards nothing may be left
behind: ``/health`` counts zero subscribers once they have all gone, and the server's
memory comes back down instead of growing storm after storm. Bounded for CI:
``CLIENTS`` connections (``SYNCSTREAM_STORM_CLIENTS``, default 500), two storms.
"""

from __future__ import annotations

import asyncio
import os
import resource
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from api.support import create_org
from harness import Api, ServerProcess, User, unique

from .support import (
    Change,
    RawStream,
    assert_exactly_once_in_order,
    everything,
    open_stream,
    rss_mib,
    running_server,
    until_subscribers,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")

CLIENTS = int(os.environ.get("SYNCSTREAM_STORM_CLIENTS", "500"))
WRITES = 20  # per phase: before the storm, and during it


def raise_fd_limit() -> None:
    """Each client is a descriptor here and one in the server (which inherits the limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = CLIENTS * 2 + 512
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))
    assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] >= wanted, "cannot raise RLIMIT_NOFILE far enough"


@pytest.fixture
async def storm_server(tmp_path: Path) -> AsyncIterator[ServerProcess]:
    raise_fd_limit()
    async with running_server(f"sqlite:///{tmp_path / 'storm.db'}") as server:
        yield server


async def open_many(port: int, path: str, token: str, last_ids: list[int | None]) -> list[RawStream]:
    gate = asyncio.Semaphore(100)  # the server queues openings itself; this only bounds our sockets

    async def one(last_id: int | None) -> RawStream:
        async with gate:
            return await open_stream(port, path, token=token, last_event_id=last_id)

    return list(await asyncio.gather(*(one(last) for last in last_ids)))


async def write(api: Api, owner: User, org: dict[str, object], label: str, count: int) -> list[str]:
    made = []
    for n in range(count):
        body = {"name": f"{label}-{n}"}
        made.append(
            (
                await api.ok(
                    "POST", f"/organizations/{org['id']}/attachments", 201, json=body, token=owner.token
                )
            )["id"]
        )
    return made


async def storm(server: ServerProcess, api: Api, owner: User, org: dict[str, object]) -> float:
    """One round: connect everyone, write, drop everyone at once, reconnect everyone at once
    while writing, check every history against the log, then everyone leaves."""
    path = f"/organizations/{org['id']}/sync/stream"
    first = await open_many(server.port, f"{path}?offset=now&live=sse", owner.token, [None] * CLIENTS)
    starts = [int(s.offsets[0]["cursor"] or 0) for s in first]
    await until_subscribers(server.url, CLIENTS)
    assert server.process is not None
    peak = rss_mib(server.process.pid)
    before = await write(api, owner, org, unique("before"), WRITES)
    for stream in first:
        await stream.until(lambda s, want=before[-1]: any(c.message["entityId"] == want for c in s.changes))

    for stream in first:
        stream.abort()
    writing = asyncio.create_task(write(api, owner, org, unique("during"), WRITES))
    second = await open_many(server.port, f"{path}?live=sse", owner.token, [s.last_id for s in first])
    during = await writing
    sentinel = (await write(api, owner, org, unique("sentinel"), 1))[0]
    for stream in second:
        await stream.until(lambda s: any(c.message["entityId"] == sentinel for c in s.changes))

    truth = await everything(api, path, owner.token)
    assert {m["entityId"] for m in truth} >= set(before + during + [sentinel])
    for n, (a, b, start) in enumerate(zip(first, second, starts, strict=True)):
        history: list[Change] = a.changes + b.changes
        ids = [c.id for c in history]
        assert_exactly_once_in_order(ids, f"client {n}")
        assert ids == [int(m["activityId"]) for m in truth if int(m["activityId"]) > start], f"client {n}"
        assert not a.errors
        assert not b.errors
    for stream in second:
        stream.abort()
    await until_subscribers(server.url, 0)
    return peak


async def test_a_disconnect_storm_loses_nothing_and_leaks_nothing(storm_server: ServerProcess) -> None:
    assert storm_server.process is not None
    pid = storm_server.process.pid
    api = Api(storm_server.url)
    owner = await api.sign_up()
    org = await create_org(api, owner.token)
    idle = rss_mib(pid)

    peak = await storm(storm_server, api, owner, org)  # also warms the allocator up
    after_first = rss_mib(pid)
    await storm(storm_server, api, owner, org)
    after_second = rss_mib(pid)
    await api.aclose()

    # What a round of CLIENTS connections costs while they are open is far more than what
    # may stay behind: a leak of every subscriber's state would grow RSS round after round.
    figures = (
        f"RSS MiB: idle {idle:.1f}, {CLIENTS} open {peak:.1f}, "
        f"after storm 1 {after_first:.1f}, after storm 2 {after_second:.1f}"
    )
    print(figures)
    assert after_second - after_first < max(8.0, 0.25 * (peak - idle)), figures
