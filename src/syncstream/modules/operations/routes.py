"""Health and metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlalchemy import text
from starlette.responses import Response

from syncstream.metrics import CONTENT_TYPE
from syncstream.modules.common import RuntimeDep, json_response
from syncstream.problems import PROBLEM_CONTENT_TYPE, problem_body
from syncstream.runtime import Runtime

router = APIRouter(tags=["operations"])


async def probe_health(runtime: Runtime) -> dict[str, Any]:
    """What ``/health`` answers: the database (one query), the bus, the open subscribers."""
    database = "ok"
    try:
        async with runtime.database.reader.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception:  # any failure to reach it is "down", whatever the driver raises
        database = "unavailable"
    bus = "ok" if runtime.doorbell.healthy else "unavailable"
    return {
        "status": "ok" if database == bus == "ok" else "unavailable",
        "database": database,
        "bus": bus,
        "subscribers": runtime.subscribers.count(),
    }


@router.get("/health", summary="Liveness of the database and the bus; 503 names the failing part")
async def health(runtime: RuntimeDep) -> Response:
    body = await probe_health(runtime)
    if body["status"] == "ok":
        return json_response(body)
    failing = [name for name in ("database", "bus") if body[name] != "ok"]
    response = json_response(
        {**body, **problem_body(503, "unavailable", f"unavailable: {', '.join(failing)}")}, 503
    )
    response.headers["Retry-After"] = "5"
    response.headers["Content-Type"] = PROBLEM_CONTENT_TYPE
    return response


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(runtime: RuntimeDep) -> Response:
    return Response(runtime.metrics.render(), media_type=CONTENT_TYPE)
