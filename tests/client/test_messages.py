"""The shared message types read (and write back) exactly what the server sends."""

from __future__ import annotations

import orjson

from client.support import Org
from harness import Api
from syncstream.stream.messages import JsonPage, OffsetFrame, Problem, StreamMessage


async def test_every_activity_of_a_json_page_round_trips(org: Org) -> None:
    created = await org.create("a", tx={"transactionId": "t-1", "sourceId": "s-1", "changedField": None})
    await org.rename(created["id"], "b")
    api = org.owner.api()
    response = await api.request("GET", f"/organizations/{org.slug}/sync/stream")
    await api.aclose()
    raw = orjson.loads(response.content)
    page = JsonPage.model_validate_json(response.content)
    assert [m.to_wire() for m in page.activities] == raw["activities"]
    assert page.to_wire() == raw
    assert page.activities[0].tx is not None
    assert page.activities[0].tx.transaction_id == "t-1"
    assert page.activities[1].changed_keys == ["name"]


async def test_problems_keep_their_extra_members(org: Org) -> None:
    api = Api(org.server_url, org.owner.token)
    response = await api.request("POST", "/organizations", json={"name": "x", "slug": "!"})
    await api.aclose()
    problem = Problem.model_validate_json(response.content)
    assert (problem.type, problem.status) == ("validation_error", 422)
    assert problem.to_wire() == orjson.loads(response.content)


def test_snake_case_and_camel_case_both_validate() -> None:
    wire = {
        "activityId": "10",
        "action": "delete",
        "entityType": "attachment",
        "entityId": "a",
        "organizationId": None,
        "projectId": None,
        "changedKeys": None,
        "createdAt": "2026-11-27T19:00:00.000Z",
        "tx": None,
        "data": None,
        "someFutureField": 1,
    }
    message = StreamMessage.model_validate(wire)
    assert message.activity_id_int == 10
    assert message.to_wire() == {k: v for k, v in wire.items() if k != "someFutureField"}
    assert StreamMessage(**message.model_dump()) == message
    assert OffsetFrame.model_validate_json(b'{"cursor":null}').cursor is None
