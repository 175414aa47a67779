"""The fleet: one SQLite server holding many live subscribers, shared by idle, fanout and steady.

Opening a stream costs the server several milliseconds of CPU (see docs/performance.md), so a full run
cannot afford to open fresh connections for every scenario. The fleet opens each group of subscribers
once, on its own organization (so a burst to one group reaches no other), and keeps them: ``idle``
measures memory while opening them all, ``fanout`` and ``steady`` then burst into their own groups while
the others stay idle, which is also what a real server looks like. A scenario run alone opens only the
groups it needs.
"""

from __future__ import annotations

import contextlib
from typing import Any

from bench.context import Context
from bench.loadgen import SubscriberPool, Writer
from bench.server import HOST, Server
from bench.setup import Tenant, add_org, make_tenant

OPEN_WITHIN = 240.0


def fanout_group(subscribers: int) -> str:
    return f"fanout-{subscribers}"


class Fleet:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._stack = contextlib.AsyncExitStack()
        self.server: Server | None = None
        self.owner: Tenant | None = None
        self.pool: SubscriberPool | None = None
        self.writer: Writer | None = None
        self.orgs: dict[str, Tenant] = {}

    async def start(self) -> Fleet:
        self.server = await self._stack.enter_async_context(self.ctx.syncstream("fleet"))
        self.owner = await make_tenant(self.server.url)
        self.pool = SubscriberPool(self.ctx.options.gen_procs)
        self._stack.push_async_callback(self.pool.stop)
        self.writer = Writer()
        self._stack.push_async_callback(self.writer.stop)
        return self

    async def close(self) -> None:
        await self._stack.aclose()

    def steady_group(self, subscribers: int) -> str:
        """A steady load reuses the fan-out group of its size when the plan has one."""
        if subscribers in self.ctx.plan.fanout_sizes:
            return fanout_group(subscribers)
        return f"steady-{subscribers}"

    def planned_groups(self) -> dict[str, int]:
        """Every group the plan's fan-out and steady loads use, with its size."""
        groups = {fanout_group(n): n for n in self.ctx.plan.fanout_sizes}
        for n, _ in self.ctx.plan.steady:
            groups.setdefault(self.steady_group(n), n)
        return groups

    async def org(self, group: str) -> Tenant:
        if group not in self.orgs:
            assert self.owner is not None
            self.orgs[group] = self.owner if not self.orgs else await add_org(self.owner)
        return self.orgs[group]

    def held(self, group: str) -> int:
        assert self.pool is not None
        return self.pool.held.get(group, 0)

    async def ensure(self, group: str, count: int) -> dict[str, Any]:
        """Grow ``group`` to ``count`` live subscribers (``offset=now``); fail if any stream did not open."""
        assert self.pool is not None
        assert self.server is not None
        tenant = await self.org(group)
        more = count - self.held(group)
        if more <= 0:
            return {}
        path = tenant.stream_path + "?offset=now&live=sse"
        opened = await self.pool.open(group, HOST, self.server.port, path, tenant.token, more, OPEN_WITHIN)
        if opened["failed"]:
            raise RuntimeError(f"{opened['failed']} of {more} streams failed to open: {opened['failures']}")
        return {"opened": more, "opens_per_s": round(more / opened["seconds"]) if opened["seconds"] else None}

    async def writer_for(self, group: str) -> Writer:
        assert self.writer is not None
        assert self.server is not None
        tenant = await self.org(group)
        await self.writer.configure(HOST, self.server.port, tenant.org_slug, tenant.token)
        return self.writer


async def fleet(ctx: Context) -> Fleet:
    """The run's fleet, started on first use."""
    if ctx.fleet is None:
        ctx.fleet = await Fleet(ctx).start()
    assert isinstance(ctx.fleet, Fleet)
    return ctx.fleet
