"""The streams' query parameters (and ``Last-Event-ID``), fuzzed with Hypothesis.

``/openapi.json`` does not describe them (the handlers read the query themselves), so
schemathesis cannot reach them: here Hypothesis draws ``offset``, ``live``,
``entityTypes``, ``limit`` and ``Last-Event-ID`` — valid values, values just past the
edges, garbage, repeats — and an oracle written from the contract (not from
``stream/cursor.py``) says what must come back:

- malformed → 400 ``bad_request`` whose detail names a malformed parameter;
- well-formed but a cursor beyond the newest activity → 409 ``must_refetch``;
- otherwise 200: ``text/event-stream`` that starts with ``retry:`` and reaches its one
  ``offset`` frame when ``live=sse``, a JSON page when not.

Never a 500, and never a stream that starts for parameters that are not valid.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.support import PASSWORD
from harness import ServerProcess, unique
from syncstream.stream.sse import SSEParser

EXAMPLES = 60
BEYOND = "9" * 19  # greater than any activity ID the test server will reach


@dataclass
class Setting:
    client: httpx.Client
    token: str
    org_stream: str
    anchor: int  # an activity ID that exists (IDs only grow, so it stays valid)


@pytest.fixture(scope="module")
def setting(server: ServerProcess) -> Iterator[Setting]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        email = f"{unique('sp')}@example.test"
        signed_up = client.post("/auth/sign-up", json={"email": email, "password": PASSWORD, "name": "S"})
        token = signed_up.json()["token"]
        auth = {"Authorization": f"Bearer {token}"}
        org = client.post("/organizations", json={"name": "S", "slug": unique("sp-")}, headers=auth).json()
        for n in range(3):
            made = client.post(
                f"/organizations/{org['id']}/attachments", json={"name": f"a{n}"}, headers=auth
            )
            assert made.status_code == 201
        page = client.get(
            f"/organizations/{org['id']}/sync/stream", params={"offset": "now"}, headers=auth
        ).json()
        client.cookies.clear()
        yield Setting(client, token, f"/organizations/{org['id']}/sync/stream", int(page["cursor"]))


# -- what to send --------------------------------------------------------------------------------

ABSENT = None
digits = st.integers(min_value=0, max_value=10**25).map(str)
garbage = st.text(max_size=12)
offsets = st.one_of(
    st.sampled_from(
        ["-1", "now", "0", BEYOND, "-2", "1.5", " 1", "1 ", "+1", "0x10", "١٢", "NOW", "", "-1 "]
    ),
    digits,
    garbage,
)
lives = st.sampled_from(["sse", "SSE", "", "true", "1", "sse ", "json"]) | garbage
entity_types = st.one_of(
    st.sampled_from(["attachment", "page", "attachment,page", "", ",", "attachment,", "pages", "Attachment"]),
    garbage,
)
limits = st.one_of(
    st.integers(min_value=-5, max_value=1100).map(str), st.sampled_from(["", "1e2", "abc", "٣"]), garbage
)


@st.composite
def queries(draw: st.DrawFn) -> tuple[list[tuple[str, str]], str | None]:
    params: list[tuple[str, str]] = []
    for name, values in (
        ("offset", offsets),
        ("live", lives),
        ("entityTypes", entity_types),
        ("limit", limits),
    ):
        times = draw(st.sampled_from([0, 1, 1, 1, 2]))  # absent, once, or repeated
        params += [(name, draw(values)) for _ in range(times)]
    # HTTP strips a header value's surrounding whitespace (and clients refuse to send it).
    printable = st.characters(min_codepoint=32, max_codepoint=126)
    header_text = st.text(alphabet=printable, max_size=12).map(str.strip)
    last_event_id = draw(
        st.one_of(st.none(), digits, st.sampled_from([BEYOND, "-1", "now", "03"]), header_text)
    )
    return params, last_event_id


# -- the oracle, from the contract ----------------------------------------------------------------


def is_cursor(value: str) -> bool:
    return value != "" and value.isascii() and value.isdigit()


def expected(params: list[tuple[str, str]], last_event_id: str | None, known: str, anchor: int) -> Any:
    """("bad", {parameters that may be named}) | ("refetch",) | ("ok", live)."""
    given: dict[str, list[str]] = {}
    for name, value in params:
        given.setdefault(name, []).append(value)
    bad = {name for name, values in given.items() if len(values) > 1}
    one = {name: values[0] for name, values in given.items() if len(values) == 1}
    resume = last_event_id is not None and last_event_id.strip() != ""
    if resume and not is_cursor(last_event_id.strip()):  # type: ignore[union-attr]
        bad.add("Last-Event-ID")
    if not resume and "offset" in one and one["offset"] not in ("-1", "now") and not is_cursor(one["offset"]):
        bad.add("offset")
    if "live" in one and one["live"] != "sse":
        bad.add("live")
    if "entityTypes" in one:
        names = [n.strip() for n in one["entityTypes"].split(",")]
        if any(n != known for n in names):
            bad.add("entityTypes")
    if "limit" in one and not (
        is_cursor(one["limit"]) and len(one["limit"]) <= 4 and 1 <= int(one["limit"]) <= 1000
    ):
        bad.add("limit")
    if bad:
        return ("bad", bad)
    cursor = last_event_id.strip() if resume else one.get("offset", "-1")  # type: ignore[union-attr]
    if cursor not in ("-1", "now") and int(cursor) > anchor:  # clamped: so far beyond the newest
        return ("refetch",)
    return ("ok", one.get("live") == "sse")


# -- the check -----------------------------------------------------------------------------------


def check(setting: Setting, path: str, known: str, query: tuple[list[tuple[str, str]], str | None]) -> None:
    params, last_event_id = query
    # Cursors between the anchor and BEYOND may or may not exist by now (the server is
    # shared): keep drawn digit cursors either at most the anchor, or clearly beyond.
    params = [(n, clamp(v, setting.anchor) if n == "offset" else v) for n, v in params]
    last_event_id = clamp(last_event_id, setting.anchor) if last_event_id is not None else None
    want = expected(params, last_event_id, known, setting.anchor)
    headers = {"Authorization": f"Bearer {setting.token}"}
    if last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id
    with setting.client.stream("GET", path, params=params, headers=headers) as response:
        status, content_type = response.status_code, response.headers.get("content-type", "")
        assert status < 500, (status, query)
        if want[0] == "bad":
            assert status == 400, (status, want, query)
            problem = orjson.loads(response.read())
            assert problem["type"] == "bad_request"
            assert any(name in problem["detail"] for name in want[1]), (problem, want)
        elif want[0] == "refetch":
            assert status == 409, (status, query)
            assert orjson.loads(response.read())["type"] == "must_refetch"
        elif want[1]:
            assert status == 200, (status, response.read()[:300], query)
            assert content_type.startswith("text/event-stream")
            events, retry = read_until_offset(response)
            assert retry is not None
            assert [e.event for e in events].count("offset") == 1
            assert {e.event for e in events} <= {"change", "offset", "ping"}
        else:
            assert status == 200, (status, response.read()[:300], query)
            assert content_type == "application/json"
            assert {"activities", "cursor", "hasMore"} == set(orjson.loads(response.read()))
        if status != 200:
            assert content_type == "application/problem+json"


def clamp(value: str, anchor: int) -> str:
    if (
        is_cursor(value.strip())
        and int(value.strip()) > anchor
        and len(value.strip().lstrip("0")) < len(BEYOND)
    ):
        return str(anchor)
    return value


def read_until_offset(response: httpx.Response) -> tuple[list[Any], int | None]:
    """The events up to the offset frame, and the ``retry:`` the stream began with."""
    parser = SSEParser()
    events: list[Any] = []
    for chunk in response.iter_raw():
        events += parser.feed(chunk)
        if any(e.event == "offset" for e in events):
            return events, parser.retry
    raise AssertionError(f"the stream ended before its offset frame: {events}")


SETTINGS = settings(
    max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@SETTINGS
@given(query=queries())
def test_org_stream_parameters(setting: Setting, query: tuple[list[tuple[str, str]], str | None]) -> None:
    check(setting, setting.org_stream, "attachment", query)


@SETTINGS
@given(query=queries())
def test_pages_stream_parameters(setting: Setting, query: tuple[list[tuple[str, str]], str | None]) -> None:
    check(setting, "/pages/stream", "page", query)
