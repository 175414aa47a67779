"""The permission-aware building blocks, pure: filter, router, membership snapshot, project narrowing."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from syncstream import AccessIndex, Activity, Grant, MemberSubscriber, apply_membership_change, route
from syncstream.permissions import Access, Entity, is_allowed
from syncstream.stream.manager import SubscriberManager
from syncstream.stream.subscriber import Subscriber

TYPES = frozenset({"attachment"})

ORGS = ["o1", "o2"]
PROJECTS = [None, "p1", "p2"]

grants = st.builds(
    Grant,
    organization_id=st.sampled_from(ORGS),
    project_id=st.sampled_from(PROJECTS),
    role=st.sampled_from(["admin", "member"]),
)


def activity(activity_id: int, org: str, project: str | None, entity_type: str = "attachment") -> Activity:
    return Activity(
        id=activity_id,
        type=f"{entity_type}.created",
        action="create",
        entity_type=entity_type,
        entity_id=f"e{activity_id}",
        organization_id=org,
        project_id=project,
        user_id="u",
        changed_keys=None,
        tx=None,
        data='{"id":"e"}',
        created_iso="2026-01-01T00:00:00.000Z",
    )


def subscriber(
    org: str, memberships: dict[str, Grant], admin: bool = False, project: str | None = None
) -> MemberSubscriber:
    sub = MemberSubscriber(
        user_id="u1",
        session_id="s1",
        organization_id=org,
        project_id=project,
        system_admin=admin,
        memberships=memberships,
        entity_types=TYPES,
        cursor=0,
        max_queued=100,
    )
    sub.go_live()
    return sub


@given(
    st.lists(grants, max_size=4),
    st.booleans(),
    st.sampled_from(ORGS),
    st.sampled_from(ORGS),
    st.sampled_from(PROJECTS),
)
def test_filter_is_the_permission_rule(
    user_grants: list[Grant], admin: bool, sub_org: str, act_org: str, project: str | None
) -> None:
    memberships = {f"m{i}": g for i, g in enumerate(user_grants)}
    sub = subscriber(sub_org, memberships, admin)
    access = Access("u1", admin, tuple(g for g in user_grants if g.organization_id == sub_org))
    expected = act_org == sub_org and is_allowed(access, "read", Entity(act_org, project))
    assert sub.accepts(activity(1, act_org, project)) is expected


@given(st.lists(st.tuples(st.sampled_from(ORGS), st.lists(grants, max_size=3)), max_size=12))
def test_router_reaches_exactly_the_allowed_subscribers_with_one_encoding(
    specs: list[tuple[str, list[Grant]]],
) -> None:
    manager: SubscriberManager[Subscriber] = SubscriberManager()
    subs = [subscriber(org, {f"m{i}": g for i, g in enumerate(gs)}) for org, gs in specs]
    for sub in subs:
        manager.register(sub)
    act = activity(7, "o1", "p1")
    sent = route(manager, act)
    frames = [sub.take_all() for sub in subs]
    receivers = [f for sub, f in zip(subs, frames, strict=True) if sub.accepts(act)]
    assert sent == len(receivers)
    assert all(f for f in receivers)
    assert len(set(receivers)) <= 1  # the same bytes for everyone
    assert all(f == b"" for sub, f in zip(subs, frames, strict=True) if not sub.accepts(act))


def registered(sub: MemberSubscriber) -> AccessIndex:
    """``sub`` open as the server opens it: in the subscriber manager, and in the access index."""
    manager: SubscriberManager[Subscriber] = SubscriberManager()
    manager.register(sub)
    index = AccessIndex(manager)
    index.add(sub)
    return index


def membership_event(activity_id: int, action: str, membership_id: str, project: str | None) -> Activity:
    data = {
        "id": membership_id,
        "userId": "u1",
        "organizationId": "o1",
        "projectId": project,
        "role": "member",
    }
    return Activity(
        id=activity_id,
        type=f"membership.{action}d",
        action=action,
        entity_type="membership",
        entity_id=membership_id,
        organization_id="o1",
        project_id=project,
        user_id="admin",
        changed_keys=None,
        tx=None,
        data=orjson.dumps(data).decode(),
        created_iso="2026-01-01T00:00:00.000Z",
    )


def test_membership_events_apply_in_order_and_skip_what_the_snapshot_has() -> None:
    sub = subscriber("o1", {})
    sub.reset_memberships({"m1": Grant("o1", "p1", "member")}, as_of=10)
    manager = registered(sub)
    apply_membership_change(manager, membership_event(9, "delete", "m1", "p1"))  # already in the snapshot
    assert sub.scope is not None
    assert sub.scope.allows("p1")
    apply_membership_change(manager, membership_event(11, "create", "m2", None))
    assert sub.scope.allows(None)
    apply_membership_change(manager, membership_event(12, "delete", "m1", "p1"))
    apply_membership_change(manager, membership_event(13, "delete", "m2", None))
    assert sub.closed
    assert sub.close_reason == "forbidden"
    data = sub.take_all()
    assert data is not None
    assert b'"type":"forbidden"' in data


def test_a_loading_stream_holds_membership_events_for_its_snapshot() -> None:
    sub = MemberSubscriber(
        user_id="u1",
        session_id="s1",
        organization_id="o1",
        system_admin=False,
        memberships=None,  # a live stream reads them once registered
        entity_types=TYPES,
        cursor=0,
        max_queued=100,
    )
    manager = registered(sub)
    assert sub.scope is None  # sees nothing until the snapshot arrives
    apply_membership_change(manager, membership_event(9, "delete", "m1", "p1"))  # the snapshot has it
    apply_membership_change(manager, membership_event(11, "create", "m2", None))  # read before this
    assert not sub.closed  # never judged on the empty snapshot
    sub.reset_memberships({"m1": Grant("o1", "p1", "member")}, as_of=10)
    assert sub.scope is not None
    assert sub.scope.allows("p1")  # 9 skipped: already in the snapshot
    assert sub.scope.allows(None)  # 11 applied on top
    apply_membership_change(manager, membership_event(12, "delete", "m2", None))
    assert sub.scope is not None
    assert not sub.scope.allows(None)


@given(st.lists(grants, max_size=4), st.booleans(), st.sampled_from(["p1", "p2"]), st.sampled_from(PROJECTS))
def test_a_project_stream_sees_its_project_and_only_while_readable(
    user_grants: list[Grant], admin: bool, stream_project: str, project: str | None
) -> None:
    sub = subscriber("o1", {f"m{i}": g for i, g in enumerate(user_grants)}, admin, project=stream_project)
    access = Access("u1", admin, tuple(g for g in user_grants if g.organization_id == "o1"))
    readable = is_allowed(access, "read", Entity("o1", stream_project))
    assert (sub.scope is not None) is readable
    assert sub.accepts(activity(1, "o1", project)) is (readable and project == stream_project)


def test_a_project_stream_is_routed_by_its_project_key_and_ends_when_the_project_is_revoked() -> None:
    manager: SubscriberManager[Subscriber] = SubscriberManager()
    index = AccessIndex(manager)
    sub = subscriber(
        "o1", {"m1": Grant("o1", "p1", "member"), "m2": Grant("o1", None, "member")}, project="p1"
    )
    manager.register(sub)
    index.add(sub)
    assert route(manager, activity(5, "o1", "p1")) == 1
    assert route(manager, activity(6, "o1", "p2")) == 0
    apply_membership_change(index, membership_event(7, "delete", "m1", "p1"))  # still an org member
    assert sub.closed
    data = sub.take_all()
    assert data is not None
    assert b"no longer have access to this project" in data


def test_a_permission_function_narrows_every_delivery() -> None:
    manager: SubscriberManager[Subscriber] = SubscriberManager()
    sub = MemberSubscriber(
        user_id="u1",
        session_id="s1",
        organization_id="o1",
        system_admin=True,
        memberships={},
        entity_types=TYPES,
        cursor=0,
        max_queued=100,
        permission=lambda access, a: a.entity_id != "e6",
    )
    sub.go_live()
    manager.register(sub)
    assert route(manager, activity(5, "o1", None)) == 1
    assert route(manager, activity(6, "o1", None)) == 0


def test_a_router_returning_a_value_is_not_awaited(caplog: pytest.LogCaptureFixture) -> None:
    from syncstream.activities.bus import ActivityBus

    bus = ActivityBus({"attachment.created"})
    bus.on("attachment.created", lambda a: 3)  # e.g. a lambda around a route_* function
    bus.emit("attachment.created", activity(1, "o1", None))
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


def test_the_access_index_finds_organization_and_project_streams_until_they_close() -> None:
    manager: SubscriberManager[Subscriber] = SubscriberManager()
    index = AccessIndex(manager)
    whole, one_project, elsewhere = (
        subscriber("o1", {}),
        subscriber("o1", {"m": Grant("o1", "p1", "member")}, project="p1"),
        subscriber("o2", {}),
    )
    for sub in (whole, one_project, elsewhere):
        manager.register(sub)
        index.add(sub)
    assert {s.id for s in index.in_organization("o1")} == {whole.id, one_project.id}
    assert len(index.all()) == 3
    for sub in (whole, one_project):
        manager.unregister(sub)
        index.discard(sub)
    assert index.in_organization("o1") == []
