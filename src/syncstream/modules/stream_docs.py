"""How the OpenAPI document describes a stream route: its parameters, both 200s and its errors.

The stream routes read their parameters by hand (``streaming.parse_params``: one parser
for every stream type, with the contract's exact 400s), so FastAPI cannot see them; this
declares them, with schemas that say exactly what the parser accepts, for the document
only. The models below are never used to validate or build a response: a JSON page is
assembled from pre-rendered messages (``streaming.json_page``).
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from syncstream.stream.cursor import DEFAULT_LIMIT, MAX_LIMIT

__all__ = ["StreamMessage", "StreamPage", "stream_route_docs"]


class _Documented(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class TxEcho(_Documented):
    """The `tx` a write carried, echoed so its writer recognises it."""

    transaction_id: str
    source_id: str
    changed_field: str | None


class StreamMessage(_Documented):
    """One activity as every client receives it: the same bytes in catch-up, JSON mode and live."""

    activity_id: str = Field(description="A decimal integer as a string; the stream cursor.")
    action: Literal["create", "update", "delete"]
    entity_type: str = Field(description="`attachment` on the org stream, `page` on the pages stream.")
    entity_id: str
    organization_id: str | None
    project_id: str | None
    changed_keys: list[str] | None = Field(description="The fields an update changed; null otherwise.")
    created_at: str = Field(description="ISO 8601 UTC with milliseconds.")
    tx: TxEcho | None
    data: dict[str, Any] | None = Field(
        description="The entity right after the change (for a delete, as it stood before)."
    )


class StreamPage(_Documented):
    """One page of catch-up (`live` absent): pass `cursor` back as `offset` until `hasMore` is false."""

    activities: list[StreamMessage] = Field(description="Ascending by activity ID.")
    cursor: str | None = Field(
        description="The last activity ID read (or the resolved offset if none); the next page's `offset`."
    )
    has_more: bool


SSE_DESCRIPTION = """\
`live=sse`: a Server-Sent Events stream (`Cache-Control: no-cache`, `X-Accel-Buffering: no`).
Frames, in order:

1. `retry: <ms>` — the reconnection delay hint.
2. Catch-up: one `event: change` / `id: <activityId>` / `data: <StreamMessage JSON>` frame per missed activity
   the caller may see, ascending, all of them.
3. Exactly one `event: offset` / `data: {"cursor": "<id>" | null}`: catch-up is complete.
4. Live `change` frames as activities commit; `event: ping` / `data: pong` while idle.

The server may end the stream with `event: error` / `data: <problem JSON>` (`forbidden` when the
caller lost access, `slow_consumer`, `must_refetch`). Reconnect with `Last-Event-ID` (browsers send
it) to lose nothing."""

SSE_EXAMPLE = (
    "retry: 5000\n\n"
    'event: change\nid: 41\ndata: {"activityId":"41","action":"create","entityType":"attachment",…}\n\n'
    'event: offset\ndata: {"cursor":"41"}\n\n'
    "event: ping\ndata: pong\n\n"
)


def _problem(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


def _list_pattern(names: Collection[str]) -> str:
    one = "|".join(re.escape(name) for name in sorted(names))
    return rf"^\s*({one})\s*(,\s*({one})\s*)*$"


def _parameters(known_types: Collection[str]) -> list[dict[str, Any]]:
    return [
        {
            "name": "offset",
            "in": "query",
            "description": "`-1`: all history; `now`: live only; an activity ID: everything after it. "
            "An ID beyond the newest, or older than the history kept, is 409 `must_refetch`.",
            "schema": {"type": "string", "pattern": r"^(-1|now|[0-9]+)$", "default": "-1"},
        },
        {
            "name": "live",
            "in": "query",
            "description": "Absent: one JSON page of catch-up. `sse`: a Server-Sent Events stream.",
            "schema": {"type": "string", "enum": ["sse"]},
        },
        {
            "name": "entityTypes",
            "in": "query",
            "description": "Only these entity types, comma-separated "
            f"(known: {', '.join(sorted(known_types))}); an unknown type is 400.",
            "schema": {"type": "string", "pattern": _list_pattern(known_types)},
        },
        {
            "name": "limit",
            "in": "query",
            "description": "JSON mode only: at most this many activities in the page (a page may hold fewer "
            "with `hasMore` true when it reaches the server's size bound).",
            "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
        },
        {
            "name": "Last-Event-ID",
            "in": "header",
            "description": "Resume after this activity ID; takes precedence over `offset` (what a browser's "
            "`EventSource` sends when it reconnects). Empty is the same as absent.",
            "schema": {"type": "string", "pattern": r"^\s*[0-9]*\s*$"},
        },
    ]


def stream_route_docs(known_types: Collection[str], *, authenticated: bool) -> dict[str, Any]:
    """Keyword arguments for a stream route's decorator: ``responses`` and ``openapi_extra``."""
    responses: dict[int | str, dict[str, Any]] = {
        200: {
            "model": StreamPage,
            "description": "`live` absent: one JSON page of catch-up (`application/json`). "
            "`live=sse`: the stream (`text/event-stream`).",
            "content": {
                "text/event-stream": {
                    "schema": {"type": "string", "description": SSE_DESCRIPTION},
                    "example": SSE_EXAMPLE,
                }
            },
        },
        400: _problem("`bad_request`: a malformed parameter, named in `detail`."),
        409: _problem(
            "`must_refetch`: the cursor is beyond the newest activity or older than the history kept."
        ),
        503: _problem(
            "`unavailable`, with `Retry-After`: the database is down or the server is shutting down."
        ),
    }
    if authenticated:
        responses[401] = _problem("`unauthorized`: no, invalid or signed-out credentials.")
        responses[404] = _problem("`not_found`: no such organization, or you are not a member of it.")
    return {"responses": responses, "openapi_extra": {"parameters": _parameters(known_types)}}
