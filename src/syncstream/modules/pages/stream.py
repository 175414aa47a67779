"""``GET /pages/stream``: every page change, to anyone, built on the public library API."""

from __future__ import annotations

from syncstream import StreamSlice, Syncstream


def install(sync: Syncstream) -> None:
    @sync.stream(
        "/pages/stream",
        name="pages",
        summary="The public pages stream (JSON page or SSE); no authentication",
    )
    async def pages_stream() -> StreamSlice:
        return StreamSlice.public()
