"""Tests for SSE framing and parsing (WHATWG HTML, "Server-sent events")."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from syncstream.stream.sse import ServerSentEvent, SSEParser, encode_data_frame, encode_frame


def parse_all(chunks: Iterable[bytes], parser: SSEParser | None = None) -> list[ServerSentEvent]:
    parser = parser or SSEParser()
    events: list[ServerSentEvent] = []
    for chunk in chunks:
        events.extend(parser.feed(chunk))
    return events


def parse_bytewise(stream: bytes) -> list[ServerSentEvent]:
    return parse_all(stream[i : i + 1] for i in range(len(stream)))


def split_at(payload: bytes, cuts: Iterable[int]) -> list[bytes]:
    points = sorted({c % (len(payload) + 1) for c in cuts} | {0, len(payload)})
    return [payload[a:b] for a, b in itertools.pairwise(points)]


def reference_parse(stream: bytes) -> tuple[list[ServerSentEvent], str | None, int | None]:
    """A deliberately literal, whole-stream transcription of the spec's parsing steps, used as an oracle."""
    text = stream.decode("utf-8", "replace")
    text = text.removeprefix("\ufeff")
    lines = re.split(r"\r\n|\r|\n", text)
    lines.pop()  # not terminated by a line end: discarded at EOF
    events: list[ServerSentEvent] = []
    data_buffer, event_type, id_buffer, last_id = "", "", None, None
    retry: int | None = None
    block_retry: int | None = None
    for line in lines:
        if line == "":
            last_id = id_buffer
            if data_buffer == "":
                data_buffer = event_type = ""
                block_retry = None
                continue
            data_buffer = data_buffer.removesuffix("\n")
            events.append(ServerSentEvent(event_type or "message", data_buffer, last_id, block_retry))
            data_buffer = event_type = ""
            block_retry = None
            continue
        if line.startswith(":"):
            continue
        if ":" in line:
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
        else:
            field, value = line, ""
        if field == "event":
            event_type = value
        elif field == "data":
            data_buffer += value + "\n"
        elif field == "id":
            if "\0" not in value:
                id_buffer = value
        elif field == "retry" and value and all(c in "0123456789" for c in value):
            retry = block_retry = int(value)
    return events, last_id, retry


# --- encoding


class TestEncodeFrame:
    def test_single_line_bytes_data(self) -> None:
        assert encode_frame(data=b'{"a":1}') == b'data: {"a":1}\n\n'

    @pytest.mark.parametrize(
        ("kwargs", "expected"),
        [
            ({"event": "change"}, b"event: change\ndata: x\n\n"),
            ({"id": "41"}, b"id: 41\ndata: x\n\n"),
            ({"id": 41}, b"id: 41\ndata: x\n\n"),
            ({"event": "change", "id": 41}, b"event: change\nid: 41\ndata: x\n\n"),
        ],
    )
    def test_fast_path_with_event_and_id(self, kwargs: dict[str, str | int], expected: bytes) -> None:
        assert encode_frame(data=b"x", **kwargs) == expected  # type: ignore[arg-type]
        # The str path must produce the very same bytes as the bytes fast path.
        assert encode_frame(data="x", **kwargs) == expected  # type: ignore[arg-type]

    def test_field_order(self) -> None:
        frame = encode_frame(data="d", event="e", id="i", retry=5, comment="c")
        assert frame == b": c\nevent: e\nid: i\nretry: 5\ndata: d\n\n"

    @pytest.mark.parametrize("data", ["a\nb\rc\r\nd", b"a\nb\rc\r\nd"])
    def test_multiline_data_splits_on_every_line_ending(self, data: str | bytes) -> None:
        assert encode_frame(data=data) == b"data: a\ndata: b\ndata: c\ndata: d\n\n"

    def test_trailing_newline_keeps_an_empty_data_line(self) -> None:
        assert encode_frame(data="a\n") == b"data: a\ndata: \n\n"

    def test_empty_data_still_dispatches(self) -> None:
        assert encode_frame(data="") == b"data: \n\n"
        assert encode_frame(data=b"") == b"data: \n\n"

    def test_no_data_writes_no_data_line(self) -> None:
        assert encode_frame(retry=5000) == b"retry: 5000\n\n"
        assert encode_frame(event="x") == b"event: x\n\n"

    def test_retry_zero(self) -> None:
        assert encode_frame(retry=0) == b"retry: 0\n\n"

    def test_comment_lines(self) -> None:
        assert encode_frame(comment="keep-alive") == b": keep-alive\n\n"
        assert encode_frame(comment="a\r\nb\rc\n") == b": a\n: b\n: c\n:\n\n"
        assert encode_frame(comment="") == b":\n\n"

    def test_non_ascii_is_utf8(self) -> None:
        assert encode_frame(event="é", id="ü", data="€") == "event: é\nid: ü\ndata: €\n\n".encode()

    @pytest.mark.parametrize("bad", ["a\nb", "a\rb", "a\0b"])
    def test_id_rejects_cr_lf_nul(self, bad: str) -> None:
        with pytest.raises(ValueError, match="id"):
            encode_frame(data=b"x", id=bad)
        with pytest.raises(ValueError, match="id"):
            encode_frame(data="x\ny", id=bad)

    @pytest.mark.parametrize("bad", ["a\nb", "a\rb"])
    def test_event_rejects_cr_lf(self, bad: str) -> None:
        with pytest.raises(ValueError, match="event"):
            encode_frame(data=b"x", event=bad)
        with pytest.raises(ValueError, match="event"):
            encode_frame(event=bad)

    def test_retry_must_be_non_negative_int(self) -> None:
        with pytest.raises(ValueError, match="retry"):
            encode_frame(retry=-1)
        with pytest.raises(TypeError, match="retry"):
            encode_frame(retry=True)
        with pytest.raises(TypeError, match="retry"):
            encode_frame(retry=1.5)  # type: ignore[arg-type]

    def test_id_rejects_bool_and_other_types(self) -> None:
        with pytest.raises(TypeError, match="id"):
            encode_frame(data=b"x", id=True)
        with pytest.raises(TypeError, match="id"):
            encode_frame(data=b"x", id=4.0)  # type: ignore[arg-type]

    def test_id_accepts_int_subclasses_as_numbers(self) -> None:
        class ActivityId(int):
            def __str__(self) -> str:
                return "not the number"

        assert encode_frame(data=b"x", id=ActivityId(42)) == b"id: 42\ndata: x\n\n"

    def test_lone_surrogate_is_rejected(self) -> None:
        with pytest.raises(UnicodeEncodeError):
            encode_frame(data="\ud800")

    def test_leading_space_in_values_survives_parsing(self) -> None:
        frame = encode_frame(data="  two spaces", event=" e", id=" 1")
        assert SSEParser().feed(frame) == [ServerSentEvent(event=" e", data="  two spaces", id=" 1")]


def test_encode_data_frame() -> None:
    assert encode_data_frame(b"change", b"41", b'{"a":1}') == b'event: change\nid: 41\ndata: {"a":1}\n\n'
    assert encode_data_frame(b"change", b"41", b"{}") == encode_frame(event="change", id=41, data=b"{}")


@given(line=st.text().filter(lambda s: "\r" not in s and "\n" not in s))
def test_bytes_fast_path_matches_str_path(line: str) -> None:
    assert encode_frame(data=line.encode(), event="change", id=7) == encode_frame(
        data=line, event="change", id=7
    )


# --- parsing


class TestParser:
    def test_simple_event_defaults_to_message(self) -> None:
        parser = SSEParser()
        assert parser.feed(b"data: hello\n\n") == [ServerSentEvent(event="message", data="hello")]
        assert parser.last_event_id is None
        assert parser.retry is None

    def test_event_id_and_data(self) -> None:
        events = SSEParser().feed(b"event: change\nid: 41\ndata: {}\n\n")
        assert events == [ServerSentEvent(event="change", data="{}", id="41")]

    def test_several_events_in_one_chunk(self) -> None:
        events = SSEParser().feed(b"data: a\n\ndata: b\n\nevent: x\ndata: c\n\n")
        assert [(e.event, e.data) for e in events] == [("message", "a"), ("message", "b"), ("x", "c")]

    def test_nothing_before_the_blank_line(self) -> None:
        parser = SSEParser()
        assert parser.feed(b"data: a\n") == []
        assert parser.feed(b"\n") == [ServerSentEvent(data="a")]

    @pytest.mark.parametrize("eol", [b"\n", b"\r", b"\r\n"])
    def test_line_endings(self, eol: bytes) -> None:
        stream = b"event: e" + eol + b"data: a" + eol + b"data: b" + eol + eol
        assert SSEParser().feed(stream) == [ServerSentEvent(event="e", data="a\nb")]
        assert parse_bytewise(stream) == [ServerSentEvent(event="e", data="a\nb")]

    def test_mixed_line_endings(self) -> None:
        assert SSEParser().feed(b"data: a\rdata: b\r\ndata: c\n\r\n") == [ServerSentEvent(data="a\nb\nc")]

    def test_crlf_split_across_chunks_is_one_line_end(self) -> None:
        parser = SSEParser()
        assert parser.feed(b"data: a\r") == []
        # If the LF were a second line end, this would be a blank line and dispatch now.
        assert parser.feed(b"\n") == []
        assert parser.feed(b"data: b\r\n\r\n") == [ServerSentEvent(data="a\nb")]

    def test_lf_split_skip_survives_an_empty_chunk(self) -> None:
        parser = SSEParser()
        parser.feed(b"data: a\r")
        assert parser.feed(b"") == []
        assert parser.feed(b"\n") == []
        assert parser.feed(b"\n") == [ServerSentEvent(data="a")]

    def test_cr_terminated_event_dispatches_without_waiting_for_more_bytes(self) -> None:
        parser = SSEParser()
        assert parser.feed(b"data: a\r\r") == [ServerSentEvent(data="a")]

    def test_cr_then_cr_in_next_chunk_is_a_blank_line(self) -> None:
        parser = SSEParser()
        assert parser.feed(b"data: a\r") == []
        assert parser.feed(b"\r") == [ServerSentEvent(data="a")]

    def test_utf8_sequence_split_across_chunks(self) -> None:
        payload = "data: €😀\n\n".encode()
        assert parse_bytewise(payload) == [ServerSentEvent(data="€😀")]

    def test_invalid_utf8_is_replaced(self) -> None:
        assert SSEParser().feed(b"data: a\xffb\n\n") == [ServerSentEvent(data="a\ufffdb")]

    def test_bom_at_stream_start_is_ignored(self) -> None:
        assert SSEParser().feed(b"\xef\xbb\xbfdata: a\n\n") == [ServerSentEvent(data="a")]

    def test_bom_split_across_chunks(self) -> None:
        assert parse_bytewise(b"\xef\xbb\xbfdata: a\n\n") == [ServerSentEvent(data="a")]
        assert parse_all([b"\xef", b"\xbb\xbfdata: a\n\n"]) == [ServerSentEvent(data="a")]

    def test_only_the_first_bom_is_ignored(self) -> None:
        # A second BOM makes the field name "\ufeffdata", an unknown field, so nothing dispatches.
        assert SSEParser().feed(b"\xef\xbb\xbf\xef\xbb\xbfdata: a\n\n") == []
        parser = SSEParser()
        parser.feed(b"data: a\n\n")
        assert parser.feed(b"\xef\xbb\xbfdata: b\n\n") == []

    @pytest.mark.parametrize("prefix", [b"\xef\xbb\xbe", b"\xef\xbb", b"\xef"])
    def test_bom_like_prefix_that_is_not_a_bom_is_kept(self, prefix: bytes) -> None:
        # Kept, the prefix turns the field name into an unknown one; wrongly stripped, "data" would dispatch.
        stream = prefix + b"data: x\n\n"
        assert SSEParser().feed(stream) == []
        assert parse_bytewise(stream) == []
        assert parse_all([prefix, b"\ndata: x\n\n"]) == [ServerSentEvent(data="x")]

    @pytest.mark.parametrize(
        ("line", "data"),
        [
            (b"data: a", "a"),
            (b"data:a", "a"),
            (b"data:  a", " a"),
            (b"data: ", ""),
            (b"data:", ""),
            (b"data", ""),
            (b"data: a: b", "a: b"),
            (b"data::", ":"),
        ],
    )
    def test_value_and_single_leading_space(self, line: bytes, data: str) -> None:
        assert SSEParser().feed(line + b"\n\n") == [ServerSentEvent(data=data)]

    def test_field_without_colon_is_a_field_with_empty_value(self) -> None:
        assert SSEParser().feed(b"data\ndata\ndata: x\n\n") == [ServerSentEvent(data="\n\nx")]
        parser = SSEParser()
        parser.feed(b"id: 5\ndata: a\n\n")
        assert parser.feed(b"id\ndata: b\n\n") == [ServerSentEvent(data="b", id="")]

    def test_comments_are_ignored(self) -> None:
        assert SSEParser().feed(b": hello\n:\ndata: a\n: data: b\n\n") == [ServerSentEvent(data="a")]

    def test_comment_only_block_dispatches_nothing(self) -> None:
        assert SSEParser().feed(b": keep-alive\n\n") == []

    def test_unknown_fields_are_ignored(self) -> None:
        assert SSEParser().feed(b"foo: bar\nDATA: no\ndata : no\ndata: yes\n\n") == [
            ServerSentEvent(data="yes")
        ]

    def test_id_with_nul_is_ignored(self) -> None:
        parser = SSEParser()
        assert parser.feed(b"id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n") == [
            ServerSentEvent(data="a", id="1"),
            ServerSentEvent(data="b", id="1"),
        ]
        assert parser.last_event_id == "1"

    @pytest.mark.parametrize("value", [b"12a", b"-1", b" 5", b"1.5", b"", "١٢".encode(), b"+3"])
    def test_retry_needs_only_ascii_digits(self, value: bytes) -> None:
        parser = SSEParser()
        assert parser.feed(b"retry: " + value + b"\ndata: a\n\n") == [ServerSentEvent(data="a")]
        assert parser.retry is None

    def test_retry_applies_without_data(self) -> None:
        parser = SSEParser()
        assert parser.feed(b"retry: 5000\n\n") == []
        assert parser.retry == 5000
        assert parser.feed(b"retry: 0100\ndata: a\n\n") == [ServerSentEvent(data="a", retry=100)]
        assert parser.retry == 100
        # The event's retry is this block's; the parser's persists.
        assert parser.feed(b"data: b\n\n") == [ServerSentEvent(data="b")]
        assert parser.retry == 100

    def test_empty_data_buffer_dispatches_nothing_but_commits_id(self) -> None:
        parser = SSEParser()
        assert parser.feed(b"event: x\nid: 7\n\n") == []
        assert parser.last_event_id == "7"
        # The event type was reset too, so the next event is a plain message.
        assert parser.feed(b"data: a\n\n") == [ServerSentEvent(event="message", data="a", id="7")]

    def test_id_is_committed_only_at_the_blank_line(self) -> None:
        parser = SSEParser()
        parser.feed(b"id: 1\ndata: a\n\nid: 2\n")
        assert parser.last_event_id == "1"
        parser.feed(b"\n")
        assert parser.last_event_id == "2"

    def test_trailing_newline_of_data_removed(self) -> None:
        assert SSEParser().feed(b"data: a\ndata:\n\n") == [ServerSentEvent(data="a\n")]
        assert SSEParser().feed(b"data\n\n") == [ServerSentEvent(data="")]

    def test_last_event_id_persists_across_events(self) -> None:
        parser = SSEParser()
        events = parser.feed(b"id: 41\ndata: a\n\ndata: b\n\nid: 43\ndata: c\n\n")
        assert [e.id for e in events] == ["41", "41", "43"]
        assert parser.last_event_id == "43"

    def test_empty_id_resets_last_event_id(self) -> None:
        parser = SSEParser()
        parser.feed(b"id: 41\ndata: a\n\n")
        assert parser.feed(b"id:\ndata: b\n\n") == [ServerSentEvent(data="b", id="")]
        assert parser.last_event_id == ""

    def test_event_type_resets_after_dispatch(self) -> None:
        events = SSEParser().feed(b"event: x\ndata: a\n\ndata: b\n\nevent:\ndata: c\n\n")
        assert [e.event for e in events] == ["x", "message", "message"]

    def test_last_field_wins(self) -> None:
        events = SSEParser().feed(b"event: a\nevent: b\nid: 1\nid: 2\ndata: x\n\n")
        assert events == [ServerSentEvent(event="b", data="x", id="2")]

    def test_incomplete_event_at_eof_is_discarded(self) -> None:
        parser = SSEParser()
        assert parser.feed(b"id: 1\ndata: a\n\nid: 2\ndata: partial\n") == [ServerSentEvent(data="a", id="1")]
        parser.close()
        assert parser.last_event_id == "1"
        # A new connection: nothing of the partial block leaks into it, and its BOM is handled again.
        assert parser.feed(b"\xef\xbb\xbfdata: b\n\n") == [ServerSentEvent(data="b", id="1")]

    def test_close_discards_a_partial_line(self) -> None:
        parser = SSEParser()
        parser.feed(b"data: a\n\nevent: x\ndata: par")
        parser.close()
        assert parser.feed(b"tial\n\n") == []  # "tial" is an unknown field, not the rest of "data: par"
        assert parser.feed(b"data: b\n\n") == [ServerSentEvent(data="b")]

    def test_close_keeps_retry(self) -> None:
        parser = SSEParser()
        parser.feed(b"retry: 250\n\n")
        parser.close()
        assert parser.retry == 250

    def test_long_line_in_tiny_chunks(self) -> None:
        payload = b"x" * 50_000
        assert parse_bytewise(b"data: " + payload + b"\n\n") == [ServerSentEvent(data=payload.decode())]

    def test_api_example_stream(self) -> None:
        stream = (
            b"retry: 5000\n\n"
            b'event: change\nid: 41\ndata: {"activityId":"41"}\n\n'
            b'event: offset\ndata: {"cursor":"41"}\n\n'
            b"event: ping\ndata: pong\n\n"
        )
        parser = SSEParser()
        assert parser.feed(stream) == [
            ServerSentEvent(event="change", data='{"activityId":"41"}', id="41"),
            ServerSentEvent(event="offset", data='{"cursor":"41"}', id="41"),
            ServerSentEvent(event="ping", data="pong", id="41"),
        ]
        assert parser.retry == 5000


# --- properties

no_newline_text = st.text().filter(lambda s: "\r" not in s and "\n" not in s)
frame_kwargs = st.fixed_dictionaries(
    {"data": st.text()},
    optional={
        "event": no_newline_text,
        "id": no_newline_text.filter(lambda s: "\0" not in s) | st.integers(),
        "retry": st.integers(min_value=0, max_value=10**12),
        "comment": st.text(),
    },
)


@given(frames=st.lists(frame_kwargs, min_size=1, max_size=5), cuts=st.lists(st.integers(min_value=0)))
def test_encoded_frames_round_trip_through_any_chunking(
    frames: list[dict[str, str | int]], cuts: list[int]
) -> None:
    stream = b"".join(encode_frame(**kw) for kw in frames)  # type: ignore[arg-type]
    expected: list[ServerSentEvent] = []
    last_id: str | None = None
    for kw in frames:
        if "id" in kw:
            last_id = str(kw["id"])
        data = str(kw["data"]).replace("\r\n", "\n").replace("\r", "\n")
        event = str(kw.get("event", "")) or "message"
        retry = kw.get("retry")
        expected.append(ServerSentEvent(event=event, data=data, id=last_id, retry=retry))  # type: ignore[arg-type]

    parser = SSEParser()
    assert parse_all(split_at(stream, cuts), parser) == expected
    assert parser.last_event_id == last_id


# Bytes rich in the things that make SSE parsing tricky, so that random streams hit the interesting cases.
sse_fragments = st.sampled_from(
    [
        b"data",
        b"event",
        b"id",
        b"retry",
        b":",
        b" ",
        b"\n",
        b"\r",
        b"\r\n",
        b"\n\n",
        b"\xef\xbb\xbf",
        b"\xe2\x82\xac",
        b"\xe2",
        b"\xff",
        b"\0",
        b"x",
        b"12",
    ]
)
sse_streams = st.lists(sse_fragments | st.binary(max_size=3), max_size=40).map(b"".join)


@given(stream=sse_streams, cuts=st.lists(st.integers(min_value=0)))
def test_parser_agrees_with_reference_under_any_chunking(stream: bytes, cuts: list[int]) -> None:
    expected_events, expected_id, expected_retry = reference_parse(stream)
    parser = SSEParser()
    assert parse_all(split_at(stream, cuts), parser) == expected_events
    assert parser.last_event_id == expected_id
    assert parser.retry == expected_retry
