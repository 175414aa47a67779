"""Request IDs and the log format: every line of one request's work carries its ID.

The ID comes from the client's ``X-Request-ID`` when it is a sane token (so a proxy's ID
follows the request through), or is made here; it is echoed in the response. A stream
keeps its request's ID for its whole life, so "stream open" and "stream closed" lines
pair up, and so do the lines of a slow-consumer cut.
"""

from __future__ import annotations

import logging
import re
import secrets
from contextvars import ContextVar
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

request_id: ContextVar[str] = ContextVar("syncstream_request_id", default="-")

_SANE = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")

LOG_FORMAT = "%(levelprefix)s %(name)s %(message)s request_id=%(request_id)s"


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` to every record, so a format can always name it."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        return True


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((v for k, v in scope["headers"] if k == b"x-request-id"), b"").decode("latin-1")
        rid = given if _SANE.match(given) else secrets.token_hex(8)
        # Not reset afterwards: each request runs in its own task, whose context ends with
        # it, and a stream (run after this returns, see stream.response) keeps the ID.
        request_id.set(rid)
        header = (b"x-request-id", rid.encode())

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        await self.app(scope, receive, send_with_id)


def logging_config(base: dict[str, Any], level: str) -> dict[str, Any]:
    """uvicorn's logging config plus the ``syncstream`` loggers with request IDs."""
    config = {**base, "filters": {"request_id": {"()": RequestIdFilter}}}
    config["formatters"] = {
        **base["formatters"],
        "syncstream": {"()": "uvicorn.logging.DefaultFormatter", "fmt": LOG_FORMAT, "use_colors": None},
    }
    config["handlers"] = {
        **base["handlers"],
        "syncstream": {
            "formatter": "syncstream",
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stderr",
            "filters": ["request_id"],
        },
    }
    config["loggers"] = {
        **base["loggers"],
        "syncstream": {"handlers": ["syncstream"], "level": level.upper(), "propagate": False},
    }
    return config
