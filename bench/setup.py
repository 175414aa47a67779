"""Data the load needs, made through the API: a user, its token, an organization; and the log's IDs.

Setup is not measured, so it uses httpx; the measured paths use :mod:`bench.writers` and
:mod:`bench.subscribers`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import httpx
import orjson


@dataclass(frozen=True, slots=True)
class Tenant:
    """A signed-up user and the organization it created (so it is that organization's admin)."""

    base_url: str
    token: str
    user_id: str
    org_id: str
    org_slug: str

    @property
    def stream_path(self) -> str:
        return f"/organizations/{self.org_slug}/sync/stream"

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.base_url, headers={"Authorization": f"Bearer {self.token}"}, timeout=30
        )


async def make_tenant(base_url: str) -> Tenant:
    tag = uuid.uuid4().hex[:10]
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        response = await client.post(
            "/auth/sign-up",
            json={"email": f"bench-{tag}@example.test", "password": "bench-password", "name": "Bench"},
        )
        response.raise_for_status()
        body = response.json()
        token, user_id = body["token"], body["user"]["id"]
        response = await client.post(
            "/organizations",
            json={"name": f"Bench {tag}", "slug": f"bench-{tag}"},
            headers={"Authorization": f"Bearer {token}"},
        )
        response.raise_for_status()
        org = response.json()
    return Tenant(base_url, token, user_id, org["id"], org["slug"])


async def add_org(tenant: Tenant) -> Tenant:
    """Another organization of the same user (its admin too)."""
    tag = uuid.uuid4().hex[:10]
    async with tenant.client() as client:
        response = await client.post("/organizations", json={"name": f"Bench {tag}", "slug": f"bench-{tag}"})
        response.raise_for_status()
        org = response.json()
    return Tenant(tenant.base_url, tenant.token, tenant.user_id, org["id"], org["slug"])


async def newest_id(tenant: Tenant) -> int:
    """The newest activity ID of the whole log (JSON mode with ``offset=now`` reports it as the cursor)."""
    async with tenant.client() as client:
        response = await client.get(tenant.stream_path, params={"offset": "now", "limit": "1"})
        response.raise_for_status()
        cursor = response.json()["cursor"]
    return 0 if cursor is None else int(cursor)


async def activity_ids_after(tenant: Tenant, after: int) -> list[int]:
    """Every activity ID of the organization's stream after ``after``, ascending (the truth that each
    subscriber's IDs are checked against)."""
    ids: list[int] = []
    async with tenant.client() as client:
        offset = after
        while True:
            response = await client.get(tenant.stream_path, params={"offset": str(offset), "limit": "1000"})
            response.raise_for_status()
            page = orjson.loads(response.content)
            ids.extend(int(a["activityId"]) for a in page["activities"])
            if not page["hasMore"] or page["cursor"] is None:
                return ids
            offset = int(page["cursor"])


async def health(base_url: str) -> dict[str, object]:
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
        response = await client.get("/health")
        data: dict[str, object] = response.json()
        return data
