"""``/openapi.json`` describes the streams fully: their parameters, the ``Last-Event-ID`` header,
both 200s (the JSON page's schema, checked against a real page; the SSE frames) and their errors;
and the creates' idempotent replay (200)."""

from __future__ import annotations

import re
from typing import Any

import httpx
import jsonschema_rs
import pytest

from harness import Api

from .support import MESSAGE_KEYS, create_org

STREAMS = {"/organizations/{org}/sync/stream": "attachment", "/pages/stream": "page"}


@pytest.fixture
async def document(api: Api) -> dict[str, Any]:
    response = await api.request("GET", "/openapi.json")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def parameters(operation: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(p["in"], p["name"]): p for p in operation.get("parameters", [])}


def validator(document: dict[str, Any], name: str) -> Any:
    schema = {"$ref": f"#/components/schemas/{name}", "components": document["components"]}
    return jsonschema_rs.validator_for(schema)


@pytest.mark.parametrize("path", STREAMS)
async def test_stream_parameters_are_declared(document: dict[str, Any], path: str) -> None:
    declared = parameters(document["paths"][path]["get"])
    for place, name in [("query", "offset"), ("query", "live"), ("query", "entityTypes"), ("query", "limit")]:
        assert declared[(place, name)]["description"], name
    assert declared[("header", "Last-Event-ID")]["schema"]["type"] == "string"
    # The server pages by passing ``cursor`` back as ``offset``: there is no ``cursor`` parameter.
    assert ("query", "cursor") not in declared
    assert declared[("query", "live")]["schema"]["enum"] == ["sse"]
    limit = declared[("query", "limit")]["schema"]
    assert (limit["type"], limit["minimum"], limit["maximum"], limit["default"]) == ("integer", 1, 1000, 100)
    offset = re.compile(declared[("query", "offset")]["schema"]["pattern"])
    assert all(offset.match(good) for good in ("-1", "now", "0", "42"))
    assert not any(offset.match(bad) for bad in ("", "-2", "later", "4.2"))
    types = re.compile(declared[("query", "entityTypes")]["schema"]["pattern"])
    known = STREAMS[path]
    assert types.match(known)
    assert types.match(f"{known}, {known}")
    assert not types.match("nonsense")
    assert not types.match(f"{known},")


@pytest.mark.parametrize("path", STREAMS)
async def test_both_200s_and_the_errors_are_declared(document: dict[str, Any], path: str) -> None:
    responses = document["paths"][path]["get"]["responses"]
    content = responses["200"]["content"]
    assert content["application/json"]["schema"] == {"$ref": "#/components/schemas/StreamPage"}
    sse = content["text/event-stream"]
    for frame in ("retry:", "event: change", "event: offset", "event: ping", "event: error", "Last-Event-ID"):
        assert frame in sse["schema"]["description"], frame
    assert "event: offset" in sse["example"]
    problem = {"$ref": "#/components/schemas/Problem"}
    expected = {"400", "409", "503"} | ({"401", "404"} if path.startswith("/organizations") else set())
    for status in expected:
        assert responses[status]["content"]["application/problem+json"]["schema"] == problem, status
    assert ("401" in responses) is path.startswith("/organizations")


async def test_the_page_schema_matches_real_pages(document: dict[str, Any], api: Api) -> None:
    page_schema = document["components"]["schemas"]["StreamPage"]
    assert set(page_schema["required"]) == {"activities", "cursor", "hasMore"}
    message_schema = document["components"]["schemas"]["StreamMessage"]
    assert set(message_schema["required"]) == MESSAGE_KEYS
    owner = await api.sign_up()
    org = await create_org(api, owner.token)
    base = f"/organizations/{org['id']}"
    tx = {"transactionId": "t-openapi", "sourceId": "tab", "changedField": None}
    made = await api.ok("POST", f"{base}/attachments", 201, json={"name": "a", "tx": tx}, token=owner.token)
    await api.ok("PATCH", f"{base}/attachments/{made['id']}", json={"name": "b"}, token=owner.token)
    await api.ok("DELETE", f"{base}/attachments/{made['id']}", 204, token=owner.token)
    page = await api.ok("GET", f"{base}/sync/stream", token=owner.token)
    assert [m["action"] for m in page["activities"]][-3:] == ["create", "update", "delete"]
    pages = validator(document, "StreamPage")
    assert pages.is_valid(page), list(pages.iter_errors(page))
    empty = await api.ok("GET", "/pages/stream", params={"offset": "now"})
    assert pages.is_valid(empty), list(pages.iter_errors(empty))
    # The schema can fail: a numeric activity ID is refused.
    broken = {**page, "activities": [{**page["activities"][-1], "activityId": 7}]}
    assert not pages.is_valid(broken)


async def test_an_sse_response_is_what_the_document_says(api: Api) -> None:
    async with (
        httpx.AsyncClient(base_url=api.base_url, timeout=30) as client,
        client.stream("GET", "/pages/stream", params={"offset": "now", "live": "sse"}) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        seen = b""
        async for chunk in response.aiter_bytes():
            seen += chunk
            if b"event: offset" in seen:
                break
    assert seen.startswith(b"retry: ")


@pytest.mark.parametrize("path", ["/organizations/{org}/attachments", "/pages"])
async def test_the_create_replay_is_declared(document: dict[str, Any], path: str) -> None:
    responses = document["paths"][path]["post"]["responses"]
    assert {"200", "201"} <= set(responses)
    assert "transactionId" in responses["200"]["description"]
    assert "application/json" in responses["200"]["content"]
