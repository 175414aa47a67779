"""An organization with one user of every role, for stream tests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from harness import Api, ServerProcess, User, unique


@dataclass
class World:
    server: ServerProcess
    owner: User  # org admin (creator)
    member: User  # org member, no project
    project_member: User  # project membership only
    both: User  # org member + project member
    outsider: User
    org: dict[str, Any]
    project: dict[str, Any]
    other_project: dict[str, Any]

    def stream_url(self, query: str = "live=sse") -> str:
        return f"/organizations/{self.org['id']}/sync/stream?{query}"

    async def create(self, name: str, project_id: str | None = None, **extra: Any) -> dict[str, Any]:
        api = self.owner.api()
        try:
            body = {"name": name, "projectId": project_id, **extra}
            result: dict[str, Any] = await api.ok(
                "POST", f"/organizations/{self.org['id']}/attachments", 201, json=body
            )
            return result
        finally:
            await api.aclose()


async def make_world(server: ServerProcess) -> World:
    api = Api(server.url)
    try:
        owner, member, project_member, both, outsider = [await api.sign_up() for _ in range(5)]
        o = owner.api()
        org = await o.ok("POST", "/organizations", 201, json={"name": "World", "slug": unique("w")})
        base = f"/organizations/{org['id']}"
        project = await o.ok("POST", f"{base}/projects", 201, json={"name": "P"})
        other = await o.ok("POST", f"{base}/projects", 201, json={"name": "Q"})
        for user, project_id in ((member, None), (project_member, project["id"]), (both, None)):
            await o.ok(
                "POST",
                f"{base}/memberships",
                201,
                json={"email": user.email, "role": "member", "projectId": project_id},
            )
        await o.ok(
            "POST",
            f"{base}/memberships",
            201,
            json={"email": both.email, "role": "member", "projectId": project["id"]},
        )
        await o.aclose()
        return World(server, owner, member, project_member, both, outsider, org, project, other)
    finally:
        await api.aclose()


@pytest.fixture
async def world(server: ServerProcess) -> World:
    return await make_world(server)
