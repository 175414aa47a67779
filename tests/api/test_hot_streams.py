"""Hot stream routes (``_streams.hot_stream``, ``modules/hot.HotStream``): a stream route
whose endpoint takes only ``str`` path parameters and the caller is opened without the
framework's routing and dependency solving, and answers exactly as the framework does.

A GET that announces a body takes the framework's path (a stream request never has one),
so the same request with a body is the framework's answer to compare with.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Annotated, Any, get_type_hints

import httpx
import orjson
import pytest
import pytest_asyncio
from fastapi import Depends, FastAPI, Request
from prometheus_client.parser import text_string_to_metric_families
from starlette.responses import Response

from harness import Api, Stream, User, unique
from syncstream._streams import hot_stream
from syncstream.app import create_app
from syncstream.auth.sessions import SESSION_COOKIE, Caller
from syncstream.config import Settings
from syncstream.modules.common import CallerDep, current_caller
from syncstream.modules.hot import HotRoutes, HotStream

from .support import assert_problem, create_org

ORG_STREAM = "/organizations/{org}/sync/stream"

# -- detection, as a unit ------------------------------------------------------------------------


async def _other_dependency() -> str:
    return "x"


async def _not_the_caller(request: Request) -> Caller:
    raise AssertionError("never called")


def org_like(org: str, caller: CallerDep) -> None: ...


def caller_as_default(org: str, caller: Caller = Depends(current_caller)) -> None: ...


def caller_first(caller: CallerDep, project: str, org: str) -> None: ...


def with_query(org: str, caller: CallerDep, q: str | None = None) -> None: ...


def with_required_query(org: str, caller: CallerDep, q: str) -> None: ...


def with_int_path(n: int, caller: CallerDep) -> None: ...


def with_default_path(org: str, caller: CallerDep, extra: str = "x") -> None: ...


def with_other_dependency(
    org: str, caller: CallerDep, x: Annotated[str, Depends(_other_dependency)]
) -> None: ...


def with_another_caller(org: str, caller: Annotated[Caller, Depends(_not_the_caller)]) -> None: ...


def without_caller(org: str) -> None: ...


def with_request(org: str, caller: CallerDep, request: Request) -> None: ...


def parameters(fn: Callable[..., Any]) -> list[inspect.Parameter]:
    """The endpoint's parameters with their resolved annotations, as ``Syncstream.stream`` passes them."""
    hints = get_type_hints(fn, include_extras=True)
    return [
        p.replace(annotation=hints.get(p.name, p.annotation))
        for p in inspect.signature(fn).parameters.values()
    ]


async def _never(request: Request, kwargs: dict[str, Any]) -> Response:
    raise AssertionError("not opened")


@pytest.mark.parametrize(
    ("path", "fn"),
    [
        (ORG_STREAM, org_like),
        (ORG_STREAM, caller_as_default),
        ("/organizations/{org}/projects/{project}/stream", caller_first),
        ("/organizations/{org:str}/stream", org_like),
    ],
)
def test_plain_path_parameters_and_the_caller_are_served_hot(path: str, fn: Callable[..., Any]) -> None:
    hot = hot_stream(path, parameters(fn), _never)
    assert isinstance(hot, HotStream)
    assert hot.path == path
    assert hot.method == "GET"


@pytest.mark.parametrize(
    ("path", "fn"),
    [
        (ORG_STREAM, with_query),  # a query parameter
        (ORG_STREAM, with_required_query),
        ("/things/{n}/stream", with_int_path),  # not a str
        ("/things/{n:int}/stream", with_int_path),
        ("/organizations/{org:int}/stream", org_like),  # a str taken from a non-str convertor
        ("/organizations/{org:path}/stream", org_like),
        (ORG_STREAM, with_default_path),  # a parameter with a default is not a path parameter
        ("/organizations/{org}/{extra}/stream", with_default_path),
        (ORG_STREAM, with_other_dependency),  # another dependency
        (ORG_STREAM, with_another_caller),  # a Caller, but not found by current_caller
        (ORG_STREAM, without_caller),  # no caller: a public stream keeps the framework's path
        ("/stream", without_caller),
        (ORG_STREAM, with_request),
    ],
)
def test_anything_else_keeps_the_frameworks_path(path: str, fn: Callable[..., Any]) -> None:
    assert hot_stream(path, parameters(fn), _never) is None


async def test_the_hot_stream_opens_with_the_path_parameters_and_the_caller() -> None:
    seen: list[dict[str, Any]] = []

    async def open_where(request: Request, kwargs: dict[str, Any]) -> Response:
        seen.append(kwargs)
        return Response(b"opened")

    hot = hot_stream("/organizations/{org}/projects/{project}/stream", parameters(caller_first), open_where)
    assert hot is not None
    caller = object()
    response = await hot.open(None, caller, {"org": "o1", "project": "p1"})  # type: ignore[arg-type]
    assert response.body == b"opened"
    assert seen == [{"org": "o1", "project": "p1", "caller": caller}]


# -- which requests the hot path takes, in process ----------------------------------------------


@pytest.fixture
def app(tmp_path: Path) -> Any:
    return create_app(Settings(database_url=f"sqlite:///{tmp_path / 'hot.db'}"))


def test_the_servers_organization_stream_is_served_hot_and_the_public_one_is_not(app: Any) -> None:
    streams = [h for h in app.hot_routes if isinstance(h, HotStream)]
    assert [h.path for h in streams] == [ORG_STREAM]


class Inner:
    """The framework's stack, standing in: records that it was asked."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.calls += 1
        await Response(b"framework", status_code=299)(scope, receive, send)


def http_scope(path: str, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    return {
        "type": "http",
        "method": "GET",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"live=sse",
        "headers": [(b"host", b"test"), *headers],
        "scheme": "http",
        "server": ("test", 80),
        "client": ("127.0.0.1", 5000),
        "http_version": "1.1",
        "asgi": {"version": "3.0"},
    }


async def call(
    app: Any, headers: list[tuple[bytes, bytes]], path: str = "/organizations/o1/sync/stream"
) -> tuple[int, int, dict[bytes, bytes]]:
    inner = Inner()
    hot = HotRoutes(inner, app, app.hot_routes, max_body=1024)
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = http_scope(path, headers)
    await hot(scope, receive, send)
    start = sent[0]
    return inner.calls, start["status"], dict(start["headers"])


async def test_a_stream_request_without_a_body_is_answered_hot(app: Any) -> None:
    # Without credentials: answered before any read of the (here empty) database.
    for headers in ([], [(b"content-length", b"0")], [(b"accept", b"text/event-stream")]):
        calls, status, sent = await call(app, headers)
        assert calls == 0, headers  # never reached the framework
        assert status == 401
        assert sent[b"content-type"] == b"application/problem+json"


@pytest.mark.parametrize(
    "headers",
    [
        [(b"content-length", b"5")],
        [(b"transfer-encoding", b"chunked")],
        [(b"x-filler", b"y")] * 101,  # more headers than the head may hold
        [(b"x-filler", b"y" * (64 * 1024))],  # a head bigger than it may be
    ],
    ids=["content-length", "chunked", "header-count", "header-bytes"],
)
async def test_a_request_the_hot_path_does_not_serve_reaches_the_framework(
    app: Any, headers: list[tuple[bytes, bytes]]
) -> None:
    calls, status, _ = await call(app, headers)
    assert (calls, status) == (1, 299)


async def test_dependency_overrides_send_every_stream_to_the_framework(app: Any) -> None:
    app.dependency_overrides[current_caller] = lambda: None
    calls, status, _ = await call(app, [])
    assert (calls, status) == (1, 299)


async def test_a_refusal_is_the_frameworks_own_answer(app: Any) -> None:
    """The same request answered by the hot path and by the framework's real stack
    (sent there by a dependency override that concerns neither)."""
    stack = FastAPI.build_middleware_stack(app)

    async def framework(scope: Any, receive: Any, send: Any) -> None:
        scope["app"] = app  # as Starlette's own __call__ does
        await stack(scope, receive, send)

    answers = []
    for override in (False, True):
        app.dependency_overrides.clear()
        if override:
            app.dependency_overrides[_other_dependency] = _other_dependency
        hot = HotRoutes(framework, app, app.hot_routes, max_body=1024)
        answers.append(await asgi_get(hot, "/organizations/o1/sync/stream"))
    (hot_status, hot_headers, hot_body), (status, headers, body) = answers
    assert hot_status == status == 401
    assert hot_headers[b"www-authenticate"] == headers[b"www-authenticate"] == b"Bearer"
    assert hot_headers[b"content-type"] == headers[b"content-type"] == b"application/problem+json"
    hot_problem, problem_ = orjson.loads(hot_body), orjson.loads(body)
    hot_problem.pop("instance", None)
    problem_.pop("instance", None)
    assert hot_problem == problem_
    assert hot_problem["type"] == "unauthorized"


async def asgi_get(asgi: Any, path: str) -> tuple[int, dict[bytes, bytes], bytes]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await asgi(http_scope(path, []), receive, send)
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return sent[0]["status"], dict(sent[0]["headers"]), body


async def test_other_paths_and_methods_are_not_taken(app: Any) -> None:
    for path in ("/pages/stream", "/organizations/o1/sync/stream/", "/organizations/o1/sync"):
        calls, status, _ = await call(app, [], path=path)
        assert (calls, status) == (1, 299), path


# -- against the real server ---------------------------------------------------------------------


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def owner(client: Api) -> AsyncIterator[tuple[User, str]]:
    user = await client.sign_up()
    org = await create_org(client, user.token)
    for n in range(2):
        await client.ok(
            "POST", f"/organizations/{org['id']}/attachments", 201, json={"name": f"a{n}"}, token=user.token
        )
    yield user, org["id"]


async def get(
    api: Api, path: str, *, token: str | None, params: dict[str, str] | None = None
) -> httpx.Response:
    """A GET straight on a client of its own (no cookie jar)."""
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    async with httpx.AsyncClient(base_url=api.base_url, timeout=30) as plain:
        return await plain.get(path, params=params, headers=headers)


def problem(response: httpx.Response) -> tuple[int, dict[str, Any], str | None]:
    body = dict(response.json())
    assert body.pop("instance", "").startswith("urn:request:")
    return response.status_code, body, response.headers.get("www-authenticate")


async def scrape(api: Api) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = await api.request("GET", "/metrics")
    assert response.status_code == 200
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def requests_counted(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], status: str) -> float:
    labels = frozenset({"method": "GET", "route": ORG_STREAM, "status": status}.items())
    return samples.get(("syncstream_http_requests_total", labels), 0.0)


async def test_refusals_are_the_apps_problems(client: Api, owner: tuple[User, str]) -> None:
    """Over the wire a stream request never reaches the framework's path (one with a body
    is refused before either), so its refusals are compared with those of an operation
    the framework serves with the same dependency (an organization's attachments)."""
    user, org = owner
    outsider = await client.sign_up()
    before = await scrape(client)
    cases = [
        (None, org, {"live": "sse"}, 401, "unauthorized"),
        ("not-a-token", org, {"live": "sse"}, 401, "unauthorized"),
        (unique("tok"), org, {}, 401, "unauthorized"),
        (outsider.token, org, {"live": "sse"}, 404, "not_found"),
        (user.token, unique("no-org"), {"live": "sse"}, 404, "not_found"),
    ]
    for token, where, params, status, type_ in cases:
        hot = await get(client, f"/organizations/{where}/sync/stream", token=token, params=params)
        framework = await get(client, f"/organizations/{where}/attachments", token=token)
        assert_problem(hot, status, type_)
        assert problem(hot) == problem(framework), (token, where, params)
        assert "x-request-id" in hot.headers
    unauthorized = await get(client, f"/organizations/{org}/sync/stream", token=None)
    assert unauthorized.headers["www-authenticate"] == "Bearer"
    for params in ({"offset": "abc", "live": "sse"}, {"offset": "abc"}, {"live": "websocket"}):
        refused = await get(client, f"/organizations/{org}/sync/stream", token=user.token, params=params)
        assert_problem(refused, 400, "bad_request")
    after = await scrape(client)
    # Counted under the route's template, as the router would have named it.
    for status, count in (("401", 4), ("404", 2), ("400", 3)):
        assert requests_counted(after, status) - requests_counted(before, status) == count, status


async def test_a_stream_opens_on_the_hot_path(client: Api, owner: tuple[User, str]) -> None:
    user, org = owner
    path = f"/organizations/{org}/sync/stream"
    before = await scrape(client)
    async with (
        httpx.AsyncClient(base_url=client.base_url, timeout=30) as plain,
        Stream(plain, f"{path}?offset=-1&live=sse", {"Authorization": f"Bearer {user.token}"}) as stream,
    ):
        assert stream.response is not None
        assert stream.response.status_code == 200
        assert stream.response.headers["content-type"].startswith("text/event-stream")
        assert "x-request-id" in stream.response.headers
        changes, offset = await stream.until_offset()
    page = await client.ok("GET", path, params={"offset": "-1"}, token=user.token)
    # The same activities as the JSON page, and the offset frame names the last.
    assert [(c.id, orjson.loads(c.data)) for c in changes] == [
        (m["activityId"], m) for m in page["activities"]
    ]
    assert len(changes) == 2
    assert orjson.loads(offset.data) == {"cursor": changes[-1].id}
    after = await scrape(client)
    assert requests_counted(after, "200") - requests_counted(before, "200") == 2  # the stream and the page


async def test_the_session_cookie_opens_the_stream_on_the_hot_path(
    client: Api, owner: tuple[User, str]
) -> None:
    user, org = owner
    async with httpx.AsyncClient(base_url=client.base_url, timeout=30) as browser:
        signed_in = await browser.post(
            "/auth/sign-in", json={"email": user.email, "password": "correct-horse"}
        )
        assert signed_in.status_code == 200, signed_in.text
        assert browser.cookies.get(SESSION_COOKIE)
        async with Stream(browser, f"/organizations/{org}/sync/stream?offset=-1&live=sse", {}) as stream:
            assert stream.response is not None
            assert stream.response.status_code == 200
            changes, offset = await stream.until_offset()
        assert len(changes) == 2
        assert orjson.loads(offset.data) == {"cursor": changes[-1].id}
        page = await browser.get(f"/organizations/{org}/sync/stream", params={"offset": "-1"})
        assert page.status_code == 200
        assert [m["activityId"] for m in page.json()["activities"]] == [c.id for c in changes]
        browser.cookies.clear()
        assert_problem(await browser.get(f"/organizations/{org}/sync/stream"), 401, "unauthorized")
