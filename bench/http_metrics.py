"""What the HTTP metrics cost per request: ``python -m bench.http_metrics``.

A no-op ASGI app that answers 201 on a route template, called in process with and without
:class:`~syncstream.http_metrics.HttpMetricsMiddleware`; the difference is the middleware's
whole cost (its ASGI layer, the clock, the update). Rounds alternate so that a machine's
drift hits both alike; the median of each is printed.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

from syncstream.http_metrics import HttpMetricsMiddleware
from syncstream.metrics import Metrics

REQUESTS = 100_000
ROUNDS = 5


class _Route:
    path = "/organizations/{org}/attachments"


_ROUTE = _Route()


async def _app(scope: Any, receive: Any, send: Any) -> None:
    scope["route"] = _ROUTE
    await send({"type": "http.response.start", "status": 201, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


async def _send(message: Any) -> None:
    return None


async def _receive() -> Any:
    return {"type": "http.request"}


async def _per_request(app: Any) -> float:
    started = time.perf_counter()
    for _ in range(REQUESTS):
        await app({"type": "http", "method": "POST", "path": "/organizations/o/attachments"}, _receive, _send)
    return (time.perf_counter() - started) / REQUESTS


async def main() -> None:
    measured = HttpMetricsMiddleware(_app, Metrics(lambda: 0))
    bare, with_metrics = [], []
    for _ in range(ROUNDS):
        bare.append(await _per_request(_app))
        with_metrics.append(await _per_request(measured))
    b, m = statistics.median(bare) * 1e6, statistics.median(with_metrics) * 1e6
    print(
        f"bare app: {b:.2f} µs/request; with HTTP metrics: {m:.2f} µs/request; cost: {m - b:.2f} µs/request"
    )


if __name__ == "__main__":
    asyncio.run(main())
