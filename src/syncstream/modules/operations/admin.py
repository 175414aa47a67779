"""``GET /admin/streams``: what this server process is serving, for the console's server panel.

System admins only: the subscriber count of each organization tells who is active right now, which no
tenant may learn about another.
"""

from __future__ import annotations

import os
from typing import Any, Final

from fastapi import APIRouter
from sqlalchemy import select
from starlette.responses import Response

from syncstream import problems
from syncstream._access import PUBLIC_KEY, organization_key
from syncstream.activities.transports.base import redact_url
from syncstream.db.schema import Organization
from syncstream.modules.common import CallerDep, RuntimeDep, json_response
from syncstream.modules.operations.routes import probe_health

router = APIRouter(tags=["operations"])

#: Streams listed, busiest first; the totals still count every one.
MAX_STREAMS: Final = 100
_ORG_PREFIX: Final = organization_key("")


@router.get(
    "/admin/streams",
    summary="This process's open streams, subscribers per stream, health and bus state (system admins)",
)
async def admin_streams(caller: CallerDep, runtime: RuntimeDep) -> Response:
    if not caller.system_admin:
        raise problems.forbidden("Only a system admin may see the server's streams.")
    manager = runtime.subscribers
    counted = sorted(
        ((manager.count_by_index(key), key) for key in manager.index_keys()),
        key=lambda item: (-item[0], item[1]),
    )
    shown = counted[:MAX_STREAMS]
    org_ids = [key.removeprefix(_ORG_PREFIX) for _, key in shown if key.startswith(_ORG_PREFIX)]
    orgs: dict[str, tuple[str, str]] = {}
    if org_ids:
        t = Organization.__table__
        async with runtime.database.reader.connect() as conn:
            rows = await conn.execute(select(t.c.id, t.c.slug, t.c.name).where(t.c.id.in_(org_ids)))
            orgs = {row.id: (row.slug, row.name) for row in rows}
    streams: list[dict[str, Any]] = []
    for count, key in shown:
        if key == PUBLIC_KEY:  # the built-in server's one public stream
            streams.append({"stream": "pages", "path": "/pages/stream", "subscribers": count})
        elif key.startswith(_ORG_PREFIX):
            org_id = key.removeprefix(_ORG_PREFIX)
            slug, name = orgs.get(org_id, (None, None))
            streams.append(
                {
                    "stream": "organization",
                    "path": f"/organizations/{slug or org_id}/sync/stream",
                    "organizationId": org_id,
                    "slug": slug,
                    "name": name,
                    "subscribers": count,
                }
            )
        else:
            streams.append({"stream": key, "path": None, "subscribers": count})
    health = await probe_health(runtime)
    opened = runtime.metrics.registry.get_sample_value
    body = {
        "process": {"pid": os.getpid(), "closing": runtime.closing},
        "health": health,
        "bus": {
            "url": redact_url(runtime.settings.bus_url),
            "status": health["bus"],
            "logPosition": str(runtime.tailer.position),
            "tailer": "ok" if runtime.tailer.healthy else "unavailable",
        },
        "connections": {
            "open": manager.count(),
            "opened": {
                name: int(opened("syncstream_stream_connections_total", {"stream": name}) or 0)
                for name in ("org", "pages")
            },
        },
        "subscribers": manager.count(),
        "streamCount": len(counted),
        "streams": streams,
        "truncated": len(counted) > len(shown),
    }
    return json_response(body)
