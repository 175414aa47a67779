"""The bytes on the wire: the timestamp marker writers embed, and frames shaped like the server's.

A write carries its send time (``time.monotonic_ns()``, one clock for every process on the machine) in the
attachment's ``name`` as ``b<nanoseconds>``; a subscriber finds ``"name":"b`` in the frame and reads the
digits back, so latency is measured without parsing the JSON.
"""

from __future__ import annotations

import time

#: What precedes the send time inside a change frame.
MARK = b'"name":"b'
MARK_LEN = len(MARK)


def stamped_name(now_ns: int | None = None) -> str:
    return f"b{time.monotonic_ns() if now_ns is None else now_ns}"


def chunk(data: bytes) -> bytes:
    """One HTTP/1.1 chunk, as uvicorn writes each ``http.response.body`` message."""
    return b"%x\r\n%s\r\n" % (len(data), data)


# A frame as syncstream renders an attachment create (same fields, same order, IDs of the same length), so
# the reference server writes as many bytes per delivery as the real one.
_ORG = b"org_0123456789abcdef"
_ATT = b"att_0123456789abcdef"
_USR = b"usr_0123456789abcdef"
_TIME = b"2026-11-27T21:00:48.232Z"
_FRAME = (
    b"event: change\nid: %d\ndata: "
    b'{"activityId":"%d","action":"create","entityType":"attachment","entityId":"' + _ATT + b'",'
    b'"organizationId":"' + _ORG + b'","projectId":null,"changedKeys":null,"createdAt":"' + _TIME + b'",'
    b'"tx":null,"data":{"id":"' + _ATT + b'","organizationId":"' + _ORG + b'","projectId":null,'
    b'"name":"b%d","url":null,"contentType":null,"size":null,"createdBy":"' + _USR + b'",'
    b'"createdAt":"' + _TIME + b'","updatedAt":"' + _TIME + b'"}}\n\n'
)

RETRY_FRAME = b"retry: 5000\n\n"
PING_FRAME = b"event: ping\ndata: pong\n\n"


def change_frame(activity_id: int, sent_ns: int) -> bytes:
    return _FRAME % (activity_id, activity_id, sent_ns)


def offset_frame(cursor: int | None) -> bytes:
    value = b"null" if cursor is None else b'"%d"' % cursor
    return b'event: offset\ndata: {"cursor":%s}\n\n' % value


SSE_RESPONSE_HEAD = (
    b"HTTP/1.1 200 OK\r\n"
    b"server: bench-ceiling\r\n"
    b"content-type: text/event-stream; charset=utf-8\r\n"
    b"cache-control: no-cache\r\n"
    b"x-accel-buffering: no\r\n"
    b"transfer-encoding: chunked\r\n\r\n"
)
