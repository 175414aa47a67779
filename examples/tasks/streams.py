"""Step 3 of docs/library.md: a permission-aware stream of one project, in one small file.

Revocation comes with the building blocks: a membership removed or narrowed, a
sign-out, the organization deleted end or narrow the stream before its next event.
"""

from __future__ import annotations

from syncstream import CallerDep, StreamSlice

from .sync import sync


@sync.stream(
    "/organizations/{org}/projects/{project_id}/stream",
    types={"board", "task", "comment"},
    name="project",
    summary="One project's boards, tasks and comments (JSON page or SSE)",
)
async def project_stream(org: str, project_id: str, caller: CallerDep) -> StreamSlice:
    # 404 unless the caller may read this project of this organization.
    return await sync.organization_slice(caller, org, project_id)
