"""Mounting into a host application that brings its own identity: syncstream's caller
dependency replaced by the host's, no syncstream auth routes, streams on a real socket."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
import uvicorn
from fastapi import FastAPI, Header, HTTPException
from sqlalchemy import String, insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from harness import Api, Stream, free_port
from syncstream import (
    Access,
    Caller,
    CallerDep,
    Grant,
    Settings,
    StreamPaths,
    StreamSlice,
    Syncstream,
    in_organization,
)
from syncstream.db.schema import Membership, Organization, User

pytestmark = pytest.mark.asyncio(loop_scope="session")


class Base(DeclarativeBase):
    pass


class Invoice(Base):
    __tablename__ = "invoices"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    organization_id: Mapped[str] = mapped_column(String(32))
    total: Mapped[int]


USERS = {"key-alice": "alice", "key-bob": "bob"}


async def host_caller(x_api_key: str | None = Header(default=None)) -> Caller:
    """The host's own authentication: an API key per user."""
    user = USERS.get(x_api_key or "")
    if user is None:
        raise HTTPException(401, "unknown API key")
    grants = (Grant("org1", None, "member"),) if user == "alice" else ()
    now = time.time()  # the host's session: started and used now, as far as syncstream is told
    access = Access(user, False, grants)
    return Caller(user, f"{user}@host", user, "user", datetime.now(UTC), f"host-{user}", access, now, now)


@pytest.fixture
async def host(tmp_path: Path) -> AsyncIterator[tuple[str, Syncstream]]:
    sync = Syncstream(Settings(database_url=f"sqlite:///{tmp_path / 'host.db'}"), caller=host_caller)
    sync.entity("invoice", Invoice, scope=in_organization(), shape=lambda i: {"id": i.id, "total": i.total})
    app = FastAPI(lifespan=sync.lifespan)

    @app.post("/invoices/{invoice_id}", status_code=201)
    async def create_invoice(invoice_id: str, total: int) -> dict[str, str]:
        async with AsyncSession(sync.engine) as session:
            session.add(Invoice(id=invoice_id, organization_id="org1", total=total))
            await session.commit()
        return {"id": invoice_id}

    @sync.stream(
        "/organizations/{org}/big-invoices/stream", permission=lambda _, a: a.data_value()["total"] >= 100
    )  # type: ignore[index]
    async def big_invoices(org: str, caller: CallerDep) -> StreamSlice:
        return await sync.organization_slice(caller, org)

    sync.install(app, identity=False)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
        await asyncio.sleep(0.01)
    now = datetime.now(UTC)
    async with sync.engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
        for user in USERS.values():
            await conn.execute(
                insert(User).values(
                    id=user, email=f"{user}@host", name=user, password_hash="-", created_at=now
                )
            )
        await conn.execute(insert(Organization).values(id="org1", name="Org", slug="org1", created_at=now))
        await conn.execute(
            insert(Membership).values(
                id="m1", user_id="alice", organization_id="org1", role="member", created_at=now
            )
        )
    yield f"http://127.0.0.1:{port}", sync
    server.should_exit = True
    for sub in sync.runtime.subscribers.get_all():
        sub.close("shutdown")
    await task


async def test_the_host_identity_opens_the_stream_and_writes_flow_live(host: tuple[str, Syncstream]) -> None:
    url, _ = host
    api = Api(url)
    alice = {"X-Api-Key": "key-alice"}
    stream_url = "/organizations/org1/sync/stream?live=sse&offset=now"
    async with Stream(api.client, stream_url, alice) as stream:
        await stream.until_offset()
        await api.ok("POST", "/invoices/inv1?total=12", 201)
        event = await stream.next()
        assert event is not None
        assert orjson.loads(event.data)["data"] == {"id": "inv1", "total": 12}
    assert (
        await api.request("GET", "/organizations/org1/sync/stream")
    ).status_code == 401  # the host's answer
    bob = await api.request("GET", "/organizations/org1/sync/stream", headers={"X-Api-Key": "key-bob"})
    assert bob.status_code == 404  # not a member: as if it did not exist
    assert bob.headers["content-type"] == "application/problem+json"
    assert (await api.request("POST", "/auth/sign-up", json={})).status_code == 404  # identity=False
    await api.aclose()


async def test_a_stream_of_its_own_rule_narrows_every_page(host: tuple[str, Syncstream]) -> None:
    url, _ = host
    api = Api(url)
    for invoice, total in (("small", 12), ("big", 120)):
        await api.ok("POST", f"/invoices/{invoice}?total={total}", 201)
    alice = {"X-Api-Key": "key-alice"}
    page = await api.ok("GET", "/organizations/org1/big-invoices/stream", headers=alice)
    assert [m["entityId"] for m in page["activities"]] == ["big"]
    page = await api.ok("GET", "/organizations/org1/sync/stream", headers=alice)
    assert [m["entityId"] for m in page["activities"]] == ["small", "big"]
    await api.aclose()


async def test_the_stream_marker_is_the_declared_routes_not_a_url_suffix() -> None:
    marker = StreamPaths()
    marker.add("/organizations/{org}/projects/{project_id}/stream")
    assert marker("/organizations/acme/projects/p1/stream")
    assert not marker("/organizations/acme/stream")
    assert not marker("/anything/else/stream")
