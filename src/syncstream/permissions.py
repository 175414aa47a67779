"""Who may read and write what: one small pure module, shared by REST and the streams.

Nothing here touches the database or the network. The REST handlers and the stream
router hand it the caller's memberships as plain values, so the same function decides a
``GET`` and a live delivery, and the whole matrix is testable without a server.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

Role = Literal["admin", "member"]
Action = Literal["read", "write"]


@dataclass(frozen=True, slots=True)
class Grant:
    """One membership: ``project_id`` None is an org membership, else a project membership."""

    organization_id: str
    project_id: str | None
    role: Role


@dataclass(frozen=True, slots=True)
class Access:
    """Everything the rules need to know about a caller."""

    user_id: str | None
    system_admin: bool
    grants: tuple[Grant, ...]

    @classmethod
    def anonymous(cls) -> Access:
        return cls(user_id=None, system_admin=False, grants=())


@dataclass(frozen=True, slots=True)
class Entity:
    """What the rules need to know about a thing: where it lives (an organization, maybe
    one of its projects), or that it is public. Types are the application's to declare
    (``Syncstream.entity``); the rules here know none of them."""

    organization_id: str | None = None
    project_id: str | None = None
    public: bool = False


@dataclass(frozen=True, slots=True)
class ReadScope:
    """The part of one organization a caller may read, in a form SQL can filter on.

    ``everything``: all entities of the org. Otherwise entities without a project when
    ``unscoped`` is true, plus those of ``project_ids``.
    """

    everything: bool
    unscoped: bool
    project_ids: frozenset[str]

    def allows(self, project_id: str | None) -> bool:
        if self.everything:
            return True
        if project_id is None:
            return self.unscoped
        return project_id in self.project_ids


_EVERYTHING = ReadScope(everything=True, unscoped=True, project_ids=frozenset())


def org_grants(access: Access, organization_id: str) -> list[Grant]:
    """The caller's memberships in one organization."""
    return [g for g in access.grants if g.organization_id == organization_id]


def read_scope(access: Access, organization_id: str) -> ReadScope | None:
    """What ``access`` may read in the org, or None when it may not even see the org."""
    if access.system_admin:
        return _EVERYTHING
    grants = org_grants(access, organization_id)
    if not grants:
        return None
    if any(g.project_id is None and g.role == "admin" for g in grants):
        return _EVERYTHING
    unscoped = any(g.project_id is None for g in grants)
    projects = frozenset(g.project_id for g in grants if g.project_id is not None)
    return ReadScope(everything=False, unscoped=unscoped, project_ids=projects)


def is_member(access: Access, organization_id: str) -> bool:
    """May see the org at all (and open its stream): any membership, or system admin."""
    return access.system_admin or any(g.organization_id == organization_id for g in access.grants)


def is_org_admin(access: Access, organization_id: str) -> bool:
    """May manage the org: its projects, memberships and deletion."""
    return access.system_admin or any(
        g.organization_id == organization_id and g.project_id is None and g.role == "admin"
        for g in access.grants
    )


def is_allowed(access: Access, action: Action, entity: Entity) -> bool:
    """The contract's read/write rules for one entity.

    Entities of an organization: readable by whoever's :func:`read_scope` covers their
    project, and writable by exactly the same people. Public entities: readable by all,
    writable by system admins. Anything else (no organization, not public): nobody.
    """
    if entity.public:
        return action == "read" or access.system_admin
    if entity.organization_id is None:
        return False
    scope = read_scope(access, entity.organization_id)
    return scope is not None and scope.allows(entity.project_id)


def readable_projects(access: Access, organization_id: str, all_projects: Iterable[str]) -> list[str]:
    """The projects of the org that ``access`` may read, in the order given."""
    scope = read_scope(access, organization_id)
    if scope is None:
        return []
    return [p for p in all_projects if scope.allows(p)]
