"""The read/write matrix of the contract, on the pure ``syncstream.permissions`` module."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from syncstream.permissions import (
    Access,
    Entity,
    Grant,
    ReadScope,
    is_allowed,
    is_member,
    is_org_admin,
    read_scope,
    readable_projects,
)

ORG = "org_1"
OTHER_ORG = "org_2"
P1 = "prj_1"
P2 = "prj_2"

SYSTEM_ADMIN = Access("sysadmin", True, ())
ORG_ADMIN = Access("orgadmin", False, (Grant(ORG, None, "admin"),))
ORG_MEMBER = Access("member", False, (Grant(ORG, None, "member"),))
PROJECT_MEMBER = Access("pmember", False, (Grant(ORG, P1, "member"),))
PROJECT_ADMIN = Access("padmin", False, (Grant(ORG, P1, "admin"),))
ORG_AND_PROJECT_MEMBER = Access("both", False, (Grant(ORG, None, "member"), Grant(ORG, P1, "member")))
OUTSIDER = Access("outsider", False, (Grant(OTHER_ORG, None, "admin"),))
ANONYMOUS = Access.anonymous()

UNSCOPED = Entity(ORG, None)
IN_P1 = Entity(ORG, P1)
IN_P2 = Entity(ORG, P2)
ELSEWHERE = Entity(OTHER_ORG, None)
PAGE = Entity(public=True)

#: caller → the attachments of ORG it may read (and so write).
READABLE = {
    "system admin": (SYSTEM_ADMIN, {UNSCOPED, IN_P1, IN_P2}),
    "org admin": (ORG_ADMIN, {UNSCOPED, IN_P1, IN_P2}),
    "org member": (ORG_MEMBER, {UNSCOPED}),
    "project member": (PROJECT_MEMBER, {IN_P1}),
    "project admin": (PROJECT_ADMIN, {IN_P1}),
    "org + project member": (ORG_AND_PROJECT_MEMBER, {UNSCOPED, IN_P1}),
    "outsider": (OUTSIDER, set()),
    "anonymous": (ANONYMOUS, set()),
}


@pytest.mark.parametrize("action", ["read", "write"])
@pytest.mark.parametrize("who", sorted(READABLE))
def test_attachment_matrix(who: str, action: str) -> None:
    access, readable = READABLE[who]
    for entity in (UNSCOPED, IN_P1, IN_P2):
        assert is_allowed(access, action, entity) is (entity in readable), (who, action, entity)  # type: ignore[arg-type]


@pytest.mark.parametrize("who", sorted(READABLE))
def test_nobody_but_system_admin_reaches_another_org(who: str) -> None:
    access, _ = READABLE[who]
    expected = access.system_admin or who == "outsider"  # the outsider is admin of OTHER_ORG
    assert is_allowed(access, "read", ELSEWHERE) is expected


@pytest.mark.parametrize("who", sorted(READABLE))
def test_pages_are_public_to_read_and_written_by_system_admins(who: str) -> None:
    access, _ = READABLE[who]
    assert is_allowed(access, "read", PAGE)
    assert is_allowed(access, "write", PAGE) is (who == "system admin")


def test_entities_neither_public_nor_in_an_organization_are_denied() -> None:
    assert not is_allowed(SYSTEM_ADMIN, "write", Entity(None, None))
    assert not is_allowed(ORG_ADMIN, "read", Entity(None, None))


def test_membership_predicates() -> None:
    assert is_member(SYSTEM_ADMIN, ORG)
    assert is_member(PROJECT_MEMBER, ORG)  # a project membership opens the org stream
    assert not is_member(OUTSIDER, ORG)
    assert not is_member(ANONYMOUS, ORG)
    assert is_org_admin(SYSTEM_ADMIN, ORG)
    assert is_org_admin(ORG_ADMIN, ORG)
    assert not is_org_admin(PROJECT_ADMIN, ORG)  # admin of a project only
    assert not is_org_admin(ORG_MEMBER, ORG)
    assert not is_org_admin(ORG_ADMIN, OTHER_ORG)


def test_read_scopes() -> None:
    assert read_scope(OUTSIDER, ORG) is None
    assert read_scope(ANONYMOUS, ORG) is None
    everything = read_scope(ORG_ADMIN, ORG)
    assert everything is not None
    assert everything.everything
    assert read_scope(ORG_MEMBER, ORG) == ReadScope(everything=False, unscoped=True, project_ids=frozenset())
    assert read_scope(PROJECT_ADMIN, ORG) == ReadScope(
        everything=False, unscoped=False, project_ids=frozenset({P1})
    )
    assert read_scope(ORG_AND_PROJECT_MEMBER, ORG) == ReadScope(
        everything=False, unscoped=True, project_ids=frozenset({P1})
    )


def test_readable_projects_keeps_the_given_order() -> None:
    assert readable_projects(ORG_ADMIN, ORG, [P2, P1]) == [P2, P1]
    assert readable_projects(PROJECT_MEMBER, ORG, [P2, P1]) == [P1]
    assert readable_projects(ORG_MEMBER, ORG, [P1, P2]) == []
    assert readable_projects(OUTSIDER, ORG, [P1, P2]) == []


# -- properties --------------------------------------------------------------------------------

orgs = st.sampled_from([ORG, OTHER_ORG, "org_3"])
projects = st.one_of(st.none(), st.sampled_from([P1, P2, "prj_3"]))
grants = st.builds(Grant, orgs, projects, st.sampled_from(["admin", "member"]))
accesses = st.builds(
    Access,
    st.sampled_from(["u1", "u2", None]),
    st.booleans(),
    st.lists(grants, max_size=5).map(tuple),
)
attachments = st.builds(Entity, st.one_of(st.none(), orgs), projects)
entities = st.one_of(attachments, st.just(PAGE))


@given(accesses, attachments)
def test_organization_entity_write_is_read(access: Access, entity: Entity) -> None:
    assert is_allowed(access, "write", entity) == is_allowed(access, "read", entity)


@given(accesses, orgs, projects)
def test_read_scope_agrees_with_is_allowed(access: Access, org: str, project: str | None) -> None:
    scope = read_scope(access, org)
    allowed = is_allowed(access, "read", Entity(org, project))
    assert (scope is not None and scope.allows(project)) == allowed


@given(accesses, orgs)
def test_a_scope_exists_exactly_for_members(access: Access, org: str) -> None:
    assert (read_scope(access, org) is not None) == is_member(access, org)


@given(st.lists(grants, max_size=5).map(tuple), entities, st.sampled_from(["read", "write"]))
def test_system_admin_may_do_everything_that_lives_somewhere(
    grant_list: tuple[Grant, ...], entity: Entity, action: str
) -> None:
    access = Access("root", True, grant_list)
    expected = entity.public or entity.organization_id is not None
    assert is_allowed(access, action, entity) == expected  # type: ignore[arg-type]


@given(accesses, attachments, grants)
def test_more_grants_never_take_access_away(access: Access, entity: Entity, extra: Grant) -> None:
    wider = Access(access.user_id, access.system_admin, (*access.grants, extra))
    if is_allowed(access, "read", entity):
        assert is_allowed(wider, "read", entity)


@given(accesses, attachments)
def test_org_admins_read_their_whole_org(access: Access, entity: Entity) -> None:
    if entity.organization_id is not None and is_org_admin(access, entity.organization_id):
        assert is_allowed(access, "read", entity)
