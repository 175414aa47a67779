"""Request bodies are validated strictly against the published schema: a value of another
JSON type than ``/openapi.json`` says is a 422, never coerced (``"size": "12"`` was stored as
12, ``"size": true`` as 1).

The cases are drawn from the served OpenAPI document itself, so that every request body of
every operation (a new one included) is held to what the document publishes.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from api.support import assert_problem, create_org
from harness import Api, ServerProcess

pytestmark = pytest.mark.asyncio(loop_scope="session")

#: A value of each other JSON type than the one published.
WRONG: dict[str, list[Any]] = {
    "integer": ["12", True, 1.5, [1], {"n": 1}],
    "string": [12, True, 1.5, ["x"], {"s": "x"}],
    "boolean": ["true", 1, 0, None],
}


def _resolve(schema: dict[str, Any], document: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref is None:
        return schema
    name = ref.rsplit("/", 1)[1]
    resolved: dict[str, Any] = document["components"]["schemas"][name]
    return resolved


def _object_schema(schema: dict[str, Any], document: dict[str, Any]) -> dict[str, Any] | None:
    """The object a body (or a nullable body) is, if it is one."""
    for option in [schema, *schema.get("anyOf", [])]:
        option = _resolve(option, document)
        if option.get("type") == "object":
            return option
    return None


def _scalar_type(schema: dict[str, Any]) -> str | None:
    for option in [schema, *schema.get("anyOf", [])]:
        if option.get("type") in WRONG:
            return str(option["type"])
    return None


def wrong_values(schema: dict[str, Any], document: dict[str, Any]) -> list[tuple[list[str], Any]]:
    """Every (path within the body, wrong value) for the scalar properties of ``schema``,
    nested objects (``tx``) included."""
    found: list[tuple[list[str], Any]] = []
    body = _object_schema(schema, document)
    if body is None:
        return found
    for name, prop in body.get("properties", {}).items():
        kind = _scalar_type(prop)
        if kind is not None:
            found.extend(([name], value) for value in WRONG[kind])
        for inner_path, value in wrong_values(prop, document):
            found.append(([name, *inner_path], value))
    return found


def nest(path: list[str], value: Any) -> dict[str, Any]:
    body: Any = value
    for name in reversed(path):
        body = {name: body}
    result: dict[str, Any] = body
    return result


async def test_every_request_body_refuses_values_of_another_json_type(
    server: ServerProcess, api: Api
) -> None:
    document = (await api.client.get("/openapi.json")).json()
    user = await api.sign_up()
    org = await create_org(api, user.token)
    cases = 0
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            request_body = operation.get("requestBody")
            if request_body is None:
                continue
            schema = request_body["content"]["application/json"]["schema"]
            url = re.sub(r"\{org\}", org["id"], path)
            url = re.sub(r"\{[^}]+\}", "missing", url)
            for field_path, value in wrong_values(schema, document):
                response = await api.request(
                    method.upper(), url, json=nest(field_path, value), token=user.token
                )
                body = assert_problem(response, 422, "validation_error")
                locations = [error["loc"] for error in body["errors"]]
                assert ["body", *field_path] in locations, (method, path, field_path, value, body)
                cases += 1
    assert cases > 100  # every body of the contract was tried, not an empty walk


@pytest.mark.parametrize("size", ["12", True, 12.0, "twelve"])
async def test_an_attachment_size_of_the_wrong_type_is_not_stored(
    server: ServerProcess, api: Api, size: Any
) -> None:
    user = await api.sign_up()
    org = await create_org(api, user.token)
    path = f"/organizations/{org['id']}/attachments"
    response = await api.request("POST", path, json={"name": "a.pdf", "size": size}, token=user.token)
    assert_problem(response, 422, "validation_error")
    created = await api.ok("POST", path, 201, json={"name": "a.pdf", "size": 12}, token=user.token)
    response = await api.request("PATCH", f"{path}/{created['id']}", json={"size": size}, token=user.token)
    assert_problem(response, 422, "validation_error")
    assert (await api.ok("GET", f"{path}/{created['id']}", token=user.token))["size"] == 12
    assert (await api.ok("GET", path, token=user.token))["items"][0]["size"] == 12
