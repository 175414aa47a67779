"""Every change of an attachment or page writes exactly one activity, seen in the JSON streams.

Also the idempotent replay of a create by ``tx.transactionId``, and that an update which
changes nothing writes nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio

from harness import Api, User, unique

from .support import (
    about,
    add_member,
    assert_message,
    assert_problem,
    create_org,
    create_project,
    stream_after,
    stream_cursor,
)

PAGES = "/pages/stream"


@dataclass
class Org:
    api: Api
    owner: User
    org: dict[str, Any]
    project_id: str

    @property
    def stream(self) -> str:
        return f"/organizations/{self.org['id']}/sync/stream"

    def path(self, suffix: str = "") -> str:
        return f"/organizations/{self.org['id']}/attachments{suffix}"

    async def cursor(self) -> str:
        return await stream_cursor(self.api, self.stream, self.owner.token)

    async def since(self, cursor: str, entity_id: str) -> list[dict[str, Any]]:
        """The org stream's messages about ``entity_id`` after ``cursor`` (as the org admin sees it)."""
        return about(await stream_after(self.api, self.stream, cursor, self.owner.token), entity_id)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def org(client: Api) -> AsyncIterator[Org]:
    owner = await client.sign_up()
    made = await create_org(client, owner.token)
    project = await create_project(client, owner.token, made["id"])
    yield Org(client, owner, made, project["id"])


def tx(transaction_id: str | None = None, changed_field: str | None = None) -> dict[str, Any]:
    return {
        "transactionId": transaction_id or unique("t-"),
        "sourceId": "tab-3",
        "changedField": changed_field,
    }


# -- attachments -------------------------------------------------------------------------------


async def test_attachment_create_update_delete_each_write_one_activity(org: Org) -> None:
    api, token = org.api, org.owner.token
    start = await org.cursor()
    create_tx = tx()
    created = await api.ok("POST", org.path(), 201, json={"name": "plan.pdf", "tx": create_tx}, token=token)
    [message] = await org.since(start, created["id"])
    assert_message(message)
    assert message["action"] == "create"
    assert message["entityType"] == "attachment"
    assert message["entityId"] == created["id"]
    assert message["organizationId"] == org.org["id"]
    assert message["projectId"] is None
    assert message["changedKeys"] is None
    assert message["tx"] == create_tx
    assert message["data"] == created

    update_tx = tx(changed_field="name")
    after_create = message["activityId"]
    updated = await api.ok(
        "PATCH", org.path(f"/{created['id']}"), json={"name": "plan-v2.pdf", "tx": update_tx}, token=token
    )
    [message] = await org.since(after_create, created["id"])
    assert_message(message)
    assert message["action"] == "update"
    assert message["changedKeys"] == ["name"]
    assert message["tx"] == update_tx
    assert message["data"] == updated
    assert int(message["activityId"]) > int(after_create)

    after_update = message["activityId"]
    delete_tx = tx()
    await api.ok("DELETE", org.path(f"/{created['id']}"), 204, json={"tx": delete_tx}, token=token)
    [message] = await org.since(after_update, created["id"])
    assert_message(message)
    assert message["action"] == "delete"
    assert message["changedKeys"] is None
    assert message["tx"] == delete_tx
    assert message["data"] == updated  # as it stood before the delete
    assert message["projectId"] is None


async def test_a_delete_without_a_body_has_tx_null_and_the_scope_before(org: Org) -> None:
    api, token = org.api, org.owner.token
    body = {"name": "in-project", "projectId": org.project_id}
    created = await api.ok("POST", org.path(), 201, json=body, token=token)
    start = await org.cursor()
    await api.ok("DELETE", org.path(f"/{created['id']}"), 204, token=token)
    [message] = await org.since(start, created["id"])
    assert (message["action"], message["tx"], message["projectId"]) == ("delete", None, org.project_id)
    assert message["data"] == created


async def test_changed_keys_are_in_request_terms(org: Org) -> None:
    api, token = org.api, org.owner.token
    created = await api.ok("POST", org.path(), 201, json={"name": "a", "size": 1}, token=token)
    start = await org.cursor()
    body = {"name": "a", "size": 2, "contentType": "text/plain", "projectId": org.project_id, "url": None}
    updated = await api.ok("PATCH", org.path(f"/{created['id']}"), json=body, token=token)
    [message] = await org.since(start, created["id"])
    assert sorted(message["changedKeys"]) == ["contentType", "projectId", "size"]
    assert message["projectId"] == org.project_id  # the entity as it stands after the change
    assert message["data"] == updated
    assert message["tx"] is None


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": "same"},
        {"name": "same", "url": None, "size": None, "projectId": None, "contentType": None},
        {"tx": {"transactionId": "t-noop", "sourceId": "s", "changedField": "name"}},
    ],
)
async def test_an_update_that_changes_nothing_writes_no_activity(org: Org, body: dict[str, Any]) -> None:
    api, token = org.api, org.owner.token
    created = await api.ok("POST", org.path(), 201, json={"name": "same"}, token=token)
    start = await org.cursor()
    unchanged = await api.ok("PATCH", org.path(f"/{created['id']}"), json=body, token=token)
    assert unchanged == created  # not even updatedAt moves
    assert await org.since(start, created["id"]) == []


async def test_a_create_replayed_with_its_transaction_id_returns_the_first_entity(org: Org) -> None:
    api, token = org.api, org.owner.token
    start = await org.cursor()
    same = tx()
    first = await api.request("POST", org.path(), json={"name": "once.pdf", "tx": same}, token=token)
    assert first.status_code == 201
    again = await api.request("POST", org.path(), json={"name": "once.pdf", "tx": same}, token=token)
    assert again.status_code == 200, again.text
    assert again.json() == first.json()
    # Even a different body replays the first create.
    other = await api.request("POST", org.path(), json={"name": "other.pdf", "tx": same}, token=token)
    assert other.status_code == 200
    assert other.json() == first.json()
    messages = await stream_after(api, org.stream, start, token)
    replays = [m for m in messages if m["tx"] and m["tx"]["transactionId"] == same["transactionId"]]
    assert [m["entityId"] for m in replays] == [first.json()["id"]]
    listed = (await api.ok("GET", org.path(), token=token))["items"]
    assert [a["id"] for a in listed if a["name"] in ("once.pdf", "other.pdf")] == [first.json()["id"]]


async def test_concurrent_replays_make_one_entity(org: Org) -> None:
    """Identical creates racing each other: one wins (201), the others replay it (200)."""
    api, token = org.api, org.owner.token
    start = await org.cursor()
    body = {"name": "raced.pdf", "tx": tx()}
    responses = await asyncio.gather(
        *(api.request("POST", org.path(), json=body, token=token) for _ in range(8))
    )
    assert sorted(r.status_code for r in responses) == [200] * 7 + [201]
    [entity] = {r.json()["id"] for r in responses}
    messages = await stream_after(api, org.stream, start, token)
    assert [m["entityId"] for m in messages if m["tx"] == body["tx"]] == [entity]


async def test_a_replayed_create_is_404_once_the_caller_may_no_longer_read_the_entity(
    org: Org, client: Api
) -> None:
    """The replay shows the entity as it stands now, so it re-checks read permission: an
    attachment moved into a project the creator cannot read is a 404 to the replay, as to
    its GET, and neither its new name nor its project leaks."""
    api, owner = org.api, org.owner
    member = await client.sign_up()
    await add_member(api, owner.token, org.org["id"], member.email)  # org member, no project
    same = tx()
    body = {"name": "draft.pdf", "tx": same}
    created = await api.ok("POST", org.path(), 201, json=body, token=member.token)
    replayed = await api.ok("POST", org.path(), 200, json=body, token=member.token)
    assert replayed == created
    await api.ok(
        "PATCH",
        org.path(f"/{created['id']}"),
        json={"projectId": org.project_id, "name": "secret-merger.pdf"},
        token=owner.token,
    )
    got = await api.request("GET", org.path(f"/{created['id']}"), token=member.token)
    assert_problem(got, 404, "not_found")
    again = await api.request("POST", org.path(), json=body, token=member.token)
    problem = assert_problem(again, 404, "not_found")
    assert "secret-merger" not in again.text
    assert org.project_id not in again.text
    assert created["id"] not in problem["detail"]
    # Still no second entity: the key stays taken, the replay only refuses to show it.
    listed = await api.ok("GET", org.path(), token=owner.token)
    assert [a["id"] for a in listed["items"] if a["createdBy"] == member.id] == [created["id"]]
    # The admin moving it back makes the replay answer again, with the entity as it is now.
    await api.ok("PATCH", org.path(f"/{created['id']}"), json={"projectId": None}, token=owner.token)
    back = await api.ok("POST", org.path(), 200, json=body, token=member.token)
    assert (back["id"], back["name"], back["projectId"]) == (created["id"], "secret-merger.pdf", None)


async def test_the_same_transaction_id_from_another_user_makes_their_own_entity(
    org: Org, client: Api
) -> None:
    api, owner = org.api, org.owner
    colleague = await client.sign_up()
    await add_member(api, owner.token, org.org["id"], colleague.email)
    same = tx()
    mine = await api.ok("POST", org.path(), 201, json={"name": "mine", "tx": same}, token=owner.token)
    start = await org.cursor()
    theirs = await api.ok("POST", org.path(), 201, json={"name": "theirs", "tx": same}, token=colleague.token)
    assert theirs["id"] != mine["id"]
    assert theirs["createdBy"] == colleague.id
    [message] = await org.since(start, theirs["id"])
    assert message["tx"] == same


async def test_a_replayed_update_is_not_deduplicated_but_writes_nothing_new(org: Org) -> None:
    """Only creates replay; repeating an update is harmless because it changes nothing."""
    api, token = org.api, org.owner.token
    created = await api.ok("POST", org.path(), 201, json={"name": "v1"}, token=token)
    start = await org.cursor()
    update = {"name": "v2", "tx": tx()}
    await api.ok("PATCH", org.path(f"/{created['id']}"), json=update, token=token)
    await api.ok("PATCH", org.path(f"/{created['id']}"), json=update, token=token)
    assert [m["action"] for m in await org.since(start, created["id"])] == ["update"]


async def test_failed_writes_write_no_activity(org: Org) -> None:
    api, token = org.api, org.owner.token
    created = await api.ok("POST", org.path(), 201, json={"name": "keep"}, token=token)
    start = await org.cursor()
    response = await api.request(
        "PATCH",
        org.path(f"/{created['id']}"),
        json={"name": "moved", "projectId": "prj_missing"},
        token=token,
    )
    assert response.status_code == 404
    assert await api.ok("GET", org.path(f"/{created['id']}"), token=token) == created
    assert await stream_after(api, org.stream, start, token) == []


# -- pages -------------------------------------------------------------------------------------


async def page_messages(api: Api, cursor: str, page_id: str) -> list[dict[str, Any]]:
    return about(await stream_after(api, PAGES, cursor), page_id)


async def test_page_changes_each_write_one_activity_with_tx_null(api: Api, system_admin: User) -> None:
    token = system_admin.token
    start = await stream_cursor(api, PAGES)
    page = await api.ok("POST", "/pages", 201, json={"title": "T", "content": "C", "tx": tx()}, token=token)
    [message] = await page_messages(api, start, page["id"])
    assert_message(message)
    assert (message["action"], message["entityType"], message["entityId"]) == ("create", "page", page["id"])
    assert message["organizationId"] is message["projectId"] is message["changedKeys"] is None
    assert message["tx"] is None
    assert message["data"] == page

    after_create = message["activityId"]
    updated = await api.ok(
        "PATCH", f"/pages/{page['id']}", json={"title": "T2", "tx": tx(changed_field="title")}, token=token
    )
    [message] = await page_messages(api, after_create, page["id"])
    assert message["action"] == "update"
    assert message["changedKeys"] == ["title"]
    assert message["tx"] is None
    assert message["data"] == updated

    after_update = message["activityId"]
    both = await api.ok("PATCH", f"/pages/{page['id']}", json={"title": "T3", "content": "C3"}, token=token)
    [message] = await page_messages(api, after_update, page["id"])
    assert sorted(message["changedKeys"]) == ["content", "title"]
    assert message["data"] == both

    after_both = message["activityId"]
    await api.ok("DELETE", f"/pages/{page['id']}", 204, token=token)
    [message] = await page_messages(api, after_both, page["id"])
    assert message["action"] == "delete"
    assert message["changedKeys"] is None
    assert message["tx"] is None
    assert message["data"] == both


async def test_a_page_update_that_changes_nothing_writes_no_activity(api: Api, system_admin: User) -> None:
    page = await api.ok(
        "POST", "/pages", 201, json={"title": "Same", "content": "Same"}, token=system_admin.token
    )
    start = await stream_cursor(api, PAGES)
    for body in ({}, {"title": "Same"}, {"title": "Same", "content": "Same", "tx": tx()}):
        assert await api.ok("PATCH", f"/pages/{page['id']}", json=body, token=system_admin.token) == page
    assert await page_messages(api, start, page["id"]) == []


async def test_a_page_create_replays_by_transaction_id(api: Api, system_admin: User) -> None:
    start = await stream_cursor(api, PAGES)
    body = {"title": "Once", "content": "C", "tx": tx()}
    first = await api.request("POST", "/pages", json=body, token=system_admin.token)
    again = await api.request("POST", "/pages", json=body, token=system_admin.token)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    creates = [m for m in await stream_after(api, PAGES, start) if m["action"] == "create"]
    assert [m["entityId"] for m in creates if m["data"]["title"] == "Once"] == [first.json()["id"]]
