"""``GET /pages/stream`` and the bus listeners that feed it."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from syncstream.activities import log
from syncstream.activities.model import Activity
from syncstream.modules.common import RuntimeDep
from syncstream.modules.pages.stream import (
    PageStreamSubscriber,
    route_to_page_subscribers,
    should_receive_page_event,
)
from syncstream.modules.stream_docs import stream_route_docs
from syncstream.modules.streaming import (
    json_page,
    measured,
    open_sse,
    parse_params,
    resolve_offset,
    stream_holders,
)
from syncstream.permissions import PUBLIC_TYPES
from syncstream.runtime import Runtime

router = APIRouter(tags=["streams"])


@router.get(
    "/pages/stream",
    summary="The public pages stream (JSON page or SSE); no authentication",
    **stream_route_docs(PUBLIC_TYPES, authenticated=False),
)
async def pages_stream(request: Request, runtime: RuntimeDep) -> Response:
    params = parse_params(request, PUBLIC_TYPES)
    resolved = await resolve_offset(runtime, params.offset)
    sub = PageStreamSubscriber(
        entity_types=params.entity_types,
        cursor=resolved.after,
        max_queued=runtime.settings.slow_consumer_messages,
    )

    async def read_after(after: int, limit: int, max_bytes: int) -> list[Activity]:
        async with runtime.database.reader.connect() as conn:
            return await log.read_after(
                conn, after, limit=limit, max_bytes=max_bytes, entity_types=sub.entity_types
            )

    def accept(activity: Activity) -> bool:
        return should_receive_page_event(sub, activity)

    if not params.live:
        return await json_page(runtime, read_after, accept, resolved, params.limit)
    return open_sse(
        runtime,
        sub,
        stream="pages",
        read_after=read_after,
        accept=accept,
        resolved=resolved,
        holders=stream_holders(request),
    )


def install(runtime: Runtime) -> None:
    """Wire the pages stream to the activity bus."""
    route = measured(runtime, route_to_page_subscribers)
    for event in ("page.created", "page.updated", "page.deleted"):
        runtime.bus.on(event, route)
