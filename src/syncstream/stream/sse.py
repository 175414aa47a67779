"""Server-Sent Events framing and parsing, with no I/O.

The stream endpoints write frames and the tests, the benchmarks and any Python client read them back, so
both directions live here, side by side, where they can be checked against one another. Nothing here touches
a socket or an event loop: the encoder returns ``bytes`` for whoever owns the transport, and the parser is fed
whatever ``bytes`` the transport happened to deliver. That keeps the wire format testable in isolation and
lets the same code serve an ASGI response and an ``httpx`` client.

The rules follow the WHATWG HTML standard, section "Server-sent events"
(https://html.spec.whatwg.org/multipage/server-sent-events.html), because browsers' ``EventSource`` is the
client we must not surprise.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass

__all__ = [
    "SSEParser",
    "ServerSentEvent",
    "encode_data_frame",
    "encode_frame",
]

_BOM = codecs.BOM_UTF8
_JOIN = b"".join
# Membership tests use these ints, not b"\n": `10 in data` is a plain memchr, several times faster than the
# substring search `b"\n" in data` takes even for a one-byte needle, and it runs on every frame and chunk.
_LF = 0x0A
_CR = 0x0D
_NUL = 0x00


def _split_lines(value: bytes) -> list[bytes]:
    """Split on CRLF, CR and LF, exactly the line ends an SSE parser recognises.

    ``bytes.splitlines`` is not used because it drops a trailing empty line, and ``data="a\\n"`` must come
    back as ``"a\\n"``, which needs the final empty ``data:`` line.
    """
    if _CR in value:
        value = value.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    return value.split(b"\n")


def _encode_id(id: str | int) -> bytes:
    if type(id) is int:
        return b"%d" % id
    if isinstance(id, str):
        raw = id.encode()
        # A parser would end the field at CR/LF (letting the rest inject fields) and ignores IDs that contain
        # NUL, so either would silently break resumption.
        if _CR in raw or _LF in raw or _NUL in raw:
            raise ValueError("SSE id must not contain CR, LF or NUL")
        return raw
    # bool is an int subclass, and "True" as an event ID is certainly a caller bug.
    if isinstance(id, int) and not isinstance(id, bool):
        return b"%d" % id
    raise TypeError(f"SSE id must be a str or an int, not {type(id).__name__}")


def _encode_event(event: str) -> bytes:
    raw = event.encode()
    if _CR in raw or _LF in raw:
        raise ValueError("SSE event name must not contain CR or LF")
    return raw


def encode_frame(
    *,
    data: str | bytes | None = None,
    event: str | None = None,
    id: str | int | None = None,
    retry: int | None = None,
    comment: str | None = None,
) -> bytes:
    """Encode one SSE frame (a block of fields followed by a blank line).

    Fields are written in the order comment, event, id, retry, data. ``data=None`` writes no ``data`` line, so
    the frame dispatches no event on the client (that is how a bare ``retry:`` hint or a comment keep-alive is
    sent); ``data=""`` writes one empty ``data`` line and does dispatch an event with empty data. Multi-line
    ``data`` and ``comment`` become one line each, split on CRLF, CR and LF, so a client joins them back with
    LF. Every value is written after ``": "``: a parser strips exactly one leading space, so values that
    themselves start with a space survive.

    Raises:
        ValueError: ``id`` contains CR, LF or NUL; ``event`` contains CR or LF; ``retry`` is negative. These
            are rejected rather than escaped because SSE has no escaping: they would either inject fields or
            be silently dropped by the client.
        TypeError: ``id`` or ``retry`` has the wrong type (``bool`` included).
        UnicodeEncodeError: a string is not encodable as UTF-8 (a lone surrogate).
    """
    # Hot path: one activity's JSON, already bytes and on one line, sent once per subscriber.
    if type(data) is bytes and comment is None and retry is None and _LF not in data and _CR not in data:
        if event is None:
            if id is None:
                return _JOIN((b"data: ", data, b"\n\n"))
            return _JOIN((b"id: ", _encode_id(id), b"\ndata: ", data, b"\n\n"))
        if id is None:
            return _JOIN((b"event: ", _encode_event(event), b"\ndata: ", data, b"\n\n"))
        return _JOIN(
            (b"event: ", _encode_event(event), b"\nid: ", _encode_id(id), b"\ndata: ", data, b"\n\n")
        )

    parts: list[bytes] = []
    if comment is not None:
        for line in _split_lines(comment.encode()):
            parts.append(b": " + line + b"\n" if line else b":\n")
    if event is not None:
        parts += (b"event: ", _encode_event(event), b"\n")
    if id is not None:
        parts += (b"id: ", _encode_id(id), b"\n")
    if retry is not None:
        if isinstance(retry, bool) or not isinstance(retry, int):
            raise TypeError(f"SSE retry must be an int, not {type(retry).__name__}")
        if retry < 0:
            raise ValueError("SSE retry must be a non-negative number of milliseconds")
        parts += (b"retry: ", str(retry).encode(), b"\n")
    if data is not None:
        raw = data.encode() if isinstance(data, str) else data
        for line in _split_lines(raw):
            parts += (b"data: ", line, b"\n")
    parts.append(b"\n")
    return _JOIN(parts)


def encode_data_frame(event: bytes, id: bytes, data: bytes) -> bytes:
    """Encode an ``event``/``id``/``data`` frame without any validation.

    This is the routing hot path: the caller guarantees ``event`` and ``id`` are valid (constants and decimal
    activity IDs) and ``data`` is one line of JSON (a JSON serialiser never emits a raw CR or LF). Skipping
    the checks matters when one activity fans out to thousands of subscribers; anything not meeting that
    guarantee must go through :func:`encode_frame`. ``join`` is used instead of ``+`` so ``data`` is copied
    once (measured about twice as fast for a typical activity).
    """
    return _JOIN((b"event: ", event, b"\nid: ", id, b"\ndata: ", data, b"\n\n"))


@dataclass(frozen=True, slots=True)
class ServerSentEvent:
    """One dispatched event, as an ``EventSource`` would deliver it.

    ``id`` is the stream's last event ID at dispatch time, which the spec carries over from earlier events
    when this one has no ``id`` field; ``None`` means the stream has not set one yet. ``retry`` is the
    reconnection time sent in this event's own block, if any (the parser's ``retry`` keeps the value in
    force).
    """

    event: str = "message"
    data: str = ""
    id: str | None = None
    retry: int | None = None


class SSEParser:
    """Incremental, WHATWG-compliant event-stream parser.

    Feed it the bytes as they arrive; chunk boundaries may fall anywhere (inside a UTF-8 sequence, inside the
    BOM, between the CR and LF of a CRLF). Lines are split on bytes before decoding, which is safe because CR
    and LF never occur inside a multi-byte UTF-8 sequence, and which avoids an incremental decoder. Invalid
    UTF-8 is replaced with U+FFFD, as the spec requires.

    Attributes:
        last_event_id: The stream's last event ID string, updated when an event block ends (even one without
            data), and kept across events and across :meth:`close`, because it is what a reconnecting client
            sends as ``Last-Event-ID``. ``None`` until the server sets one; ``""`` if the server reset it.
        retry: The reconnection time in milliseconds most recently sent by the server, or ``None``.
    """

    __slots__ = (
        "_at_stream_start",
        "_bom_prefix",
        "_data",
        "_event",
        "_id_buffer",
        "_pending",
        "_retry_in_block",
        "_skip_lf",
        "last_event_id",
        "retry",
    )

    def __init__(self) -> None:
        self.last_event_id: str | None = None
        self.retry: int | None = None
        self._id_buffer: str | None = None
        self._event = ""
        self._data: list[str] = []
        self._retry_in_block: int | None = None
        self._pending: list[bytes] = []
        self._bom_prefix = b""
        self._at_stream_start = True
        self._skip_lf = False

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        """Consume ``chunk`` and return the events it completed, in order (often none)."""
        if self._at_stream_start:
            chunk = self._strip_bom(chunk)
        if not chunk:
            return []
        if self._skip_lf:
            # The previous chunk ended with CR, whose line is already processed; an LF now is its other half.
            self._skip_lf = False
            if chunk[0] == _LF:
                chunk = chunk[1:]
                if not chunk:
                    return []
        if _LF not in chunk and _CR not in chunk:
            # Part of a line still being received. Parking the pieces and joining them once the line ends
            # keeps a long line fed in small chunks linear, instead of re-copying and re-scanning it.
            self._pending.append(chunk)
            return []
        if self._pending:
            self._pending.append(chunk)
            buf = _JOIN(self._pending)
            self._pending.clear()
        else:
            buf = chunk
        if _CR in buf:
            # A trailing CR ends its line now (waiting for a possible LF would stall a CR-only stream's last
            # event until the next chunk); remember to drop the LF if it arrives.
            self._skip_lf = buf.endswith(b"\r")
            buf = buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        lines = buf.split(b"\n")
        rest = lines.pop()
        if rest:
            self._pending.append(rest)
        events: list[ServerSentEvent] = []
        for line in lines:
            if line:
                self._process_field(line)
            else:
                event = self._dispatch()
                if event is not None:
                    events.append(event)
        return events

    def _strip_bom(self, chunk: bytes) -> bytes:
        """Drop a UTF-8 BOM at the very start of the stream, which may itself arrive split across chunks."""
        buf = self._bom_prefix + chunk
        if len(buf) < len(_BOM) and _BOM.startswith(buf):
            # Still undecided: these bytes might be a partial BOM.
            self._bom_prefix = buf
            return b""
        self._at_stream_start = False
        self._bom_prefix = b""
        return buf[len(_BOM) :] if buf.startswith(_BOM) else buf

    def close(self) -> None:
        """End the current stream: discard any partial line and incomplete event, as the spec does at EOF.

        ``last_event_id`` and ``retry`` are kept, since a reconnecting client needs them; the parser can then
        be fed the next connection's stream (a BOM at its start is handled again).
        """
        self._pending.clear()
        self._bom_prefix = b""
        self._event = ""
        self._data = []
        self._retry_in_block = None
        self._id_buffer = self.last_event_id
        self._at_stream_start = True
        self._skip_lf = False

    def _process_field(self, line: bytes) -> None:
        colon = line.find(b":")
        if colon == 0:
            return  # comment
        if colon < 0:
            name, value = line, b""
        else:
            name = line[:colon]
            value = line[colon + 2 :] if line[colon + 1 : colon + 2] == b" " else line[colon + 1 :]
        if name == b"data":
            self._data.append(value.decode("utf-8", "replace"))
        elif name == b"event":
            self._event = value.decode("utf-8", "replace")
        elif name == b"id":
            if _NUL not in value:
                self._id_buffer = value.decode("utf-8", "replace")
        # bytes.isdigit is ASCII-only, exactly the spec's "only ASCII digits" (and False for b"").
        elif name == b"retry" and value.isdigit():
            self.retry = self._retry_in_block = int(value)
        # Any other field name is ignored, per spec.

    def _dispatch(self) -> ServerSentEvent | None:
        # The last event ID is committed even when no event is dispatched.
        self.last_event_id = self._id_buffer
        data, event, retry = self._data, self._event, self._retry_in_block
        self._data = []
        self._event = ""
        self._retry_in_block = None
        if not data:
            return None
        # Joining with LF is the spec's "append value + LF, then remove the final LF".
        return ServerSentEvent(
            event=event or "message", data="\n".join(data), id=self.last_event_id, retry=retry
        )
