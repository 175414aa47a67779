"""The frames of the stream protocol, encoded once and shared.

A change frame built for one activity is the same ``bytes`` object in every
subscriber's outbox, in catch-up and live alike.
"""

from __future__ import annotations

import orjson

from syncstream.stream.sse import encode_data_frame, encode_frame

PING_FRAME = b"event: ping\ndata: pong\n\n"


def change_frame(activity_id: int, message: bytes) -> bytes:
    """``event: change`` with the activity ID as the SSE ``id`` (what ``Last-Event-ID`` resumes from)."""
    return encode_data_frame(b"change", str(activity_id).encode(), message)


def offset_frame(cursor: int | None) -> bytes:
    body = orjson.dumps({"cursor": None if cursor is None else str(cursor)})
    return encode_frame(event="offset", data=body)


def retry_frame(milliseconds: int) -> bytes:
    return encode_frame(retry=milliseconds)


def close_frame(reason: str) -> bytes:
    """``event: close`` / ``data: {"reason": …}``: the server ends this stream on purpose and the client may
    reconnect at once (with ``Last-Event-ID``), to this process's successor or another one. An extension of
    the contract, sent as the last frame when the server shuts down; clients that do not know it skip it."""
    return encode_frame(event="close", data=orjson.dumps({"reason": reason}))


#: The last frame of every open stream when the server shuts down.
SHUTDOWN_FRAME = close_frame("shutdown")


def error_frame(type_: str, status: int, detail: str, title: str | None = None) -> bytes:
    body = {"type": type_, "title": title or type_.replace("_", " ").capitalize(), "status": status}
    body["detail"] = detail
    return encode_frame(event="error", data=orjson.dumps(body))
