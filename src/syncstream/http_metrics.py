"""HTTP requests and their latency, by method, route template and status.

The route is the template the router matched (``/organizations/{org}/attachments``),
never the raw path, so the series stay few whatever clients ask for: a request no route
matched (an unknown path, or one answered before routing, such as a 413) is
``unmatched``, and a method outside the usual ones is ``other``.

A stream is counted once, when it opens: its route returns a deferred response (see
``stream.response.StreamMiddleware``, which runs outside this middleware), so its
duration here is the time to open it (authentication, cursor checks), not its life.
"""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from syncstream.metrics import Metrics
from syncstream.stream.response import DEFERRED_KEY

__all__ = ["HttpMetricsMiddleware"]

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"
#: Status labels, made once.
_STATUS = [str(code) for code in range(600)]


class HttpMetricsMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.record = metrics.http.record

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            if status == 0 and scope.get(DEFERRED_KEY):
                status = 200  # a stream, opened: StreamMiddleware sends its head next
            # 499 (nginx's "client closed request"): the request ended with no answer sent.
            self._record(scope, status or 499, time.perf_counter() - started)

    def _record(self, scope: Scope, status: int, seconds: float) -> None:
        method = scope["method"] if scope["method"] in _METHODS else "other"
        template = getattr(scope.get("route"), "path", None)
        route = template if isinstance(template, str) else UNMATCHED
        self.record(method, route, _STATUS[status] if 0 <= status < 600 else str(status), seconds)
