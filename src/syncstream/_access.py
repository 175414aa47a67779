"""Permission-aware subscribers, the router that feeds them and the lifecycle that ends them.

The building blocks of every stream type (the built-in organization and pages streams
and any stream an application adds):

- :class:`MemberSubscriber`: a stream of one organization, or of one project in it, for
  one caller. It keeps a snapshot of the caller's memberships, loaded once registered
  (the membership events that arrive meanwhile are held, then replayed on top), and
  judges every activity against it and the host's permission function.
- :class:`PublicSubscriber`: a stream of public entity types, for anyone.
- :func:`route`: one bus listener for every declared type: indexed lookup (organization,
  project or public bucket), filter, one encoding for all recipients.
- :class:`AccessIndex` and the ``apply_*`` functions: membership changed or removed,
  organization deleted, session signed out. They narrow or end the caller's streams
  before the next activity is routed, whatever the stream's index key.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from syncstream.activities.model import Activity, render_message
from syncstream.permissions import Access, Grant, ReadScope, read_scope
from syncstream.stream.frames import change_frame, error_frame
from syncstream.stream.manager import SubscriberManager
from syncstream.stream.subscriber import Subscriber

#: ``permission(access, activity)``: an application's own rule, on top of the scope rule.
Permission = Callable[[Access, Activity], bool]

PUBLIC_KEY = "public"


def organization_key(organization_id: str) -> str:
    return f"org:{organization_id}"


def project_key(project_id: str) -> str:
    return f"project:{project_id}"


class SliceSubscriber(Subscriber):
    """A subscriber that judges activities itself (``accepts``): what :func:`route` serves."""

    __slots__ = ("entity_types",)

    def __init__(self, *, index_key: str, entity_types: frozenset[str], cursor: int, max_queued: int) -> None:
        super().__init__(index_key=index_key, cursor=cursor, max_queued=max_queued)
        self.entity_types = entity_types

    def accepts(self, activity: Activity) -> bool:
        raise NotImplementedError


class PublicSubscriber(SliceSubscriber):
    """A stream of public entity types: anyone may open it, every change is for everyone."""

    __slots__ = ()

    def __init__(self, *, entity_types: frozenset[str], cursor: int, max_queued: int) -> None:
        super().__init__(
            index_key=PUBLIC_KEY, entity_types=entity_types, cursor=cursor, max_queued=max_queued
        )

    def accepts(self, activity: Activity) -> bool:
        return activity.organization_id is None and activity.entity_type in self.entity_types


FORBIDDEN_DETAIL = "You no longer have access to this organization."
PROJECT_FORBIDDEN_DETAIL = "You no longer have access to this project."


class MemberSubscriber(SliceSubscriber):
    """One caller's stream of an organization (``project_id`` None) or of one project.

    Without ``memberships`` it starts *loading*: it sees nothing, and the user's
    membership events are held until :meth:`reset_memberships` brings the snapshot
    (read once registered) and replays those the read did not contain. So a stream
    reads its memberships once, after registration, with no window in which an event
    is applied to a snapshot about to be replaced.
    """

    __slots__ = (
        "access",
        "held_membership_events",
        "membership_version",
        "memberships",
        "organization_id",
        "permission",
        "project_id",
        "scope",
        "session_id",
        "system_admin",
        "user_id",
    )

    def __init__(
        self,
        *,
        user_id: str,
        session_id: str,
        organization_id: str,
        system_admin: bool,
        memberships: dict[str, Grant] | None,
        entity_types: frozenset[str],
        cursor: int,
        max_queued: int,
        project_id: str | None = None,
        permission: Permission | None = None,
    ) -> None:
        key = organization_key(organization_id) if project_id is None else project_key(project_id)
        super().__init__(index_key=key, entity_types=entity_types, cursor=cursor, max_queued=max_queued)
        self.user_id = user_id
        self.session_id = session_id
        self.organization_id = organization_id
        self.project_id = project_id
        self.system_admin = system_admin
        self.permission = permission
        self.memberships = memberships if memberships is not None else {}
        #: Membership events up to this activity ID are already in ``memberships``.
        self.membership_version = 0
        self.held_membership_events: list[Activity] | None = None if memberships is not None else []
        self.scope: ReadScope | None = None
        self.access: Access | None = None
        self.refresh_scope()

    def reset_memberships(self, memberships: dict[str, Grant], as_of: int) -> None:
        """Replace the snapshot with one read at log position ``as_of``, then apply the
        membership events held meanwhile that it does not contain."""
        held, self.held_membership_events = self.held_membership_events, None
        self.memberships = memberships
        self.membership_version = as_of
        self.refresh_scope()
        for activity in held or ():
            apply_membership(self, activity)

    def refresh_scope(self) -> None:
        if self.held_membership_events is not None:
            self.scope = None  # loading: nothing is judged on an empty snapshot
            return
        access = Access(self.user_id, self.system_admin, tuple(self.memberships.values()))
        scope = read_scope(access, self.organization_id)
        if scope is not None and self.project_id is not None:
            # A project's stream reads that project, or nothing.
            allowed = scope.allows(self.project_id)
            scope = ReadScope(False, False, frozenset((self.project_id,))) if allowed else None
        # Kept only for a permission function: an idle stream's memory matters.
        self.access, self.scope = (access if self.permission is not None else None), scope

    def accepts(self, activity: Activity) -> bool:
        """Pure: may this caller see ``activity``, judged on the entity after the change?"""
        scope = self.scope
        if (
            activity.organization_id != self.organization_id
            or activity.entity_type not in self.entity_types
            or scope is None
            or not scope.allows(activity.project_id)
        ):
            return False
        permission = self.permission
        return permission is None or permission(self.access, activity)  # type: ignore[arg-type]

    def forbid(self, detail: str | None = None) -> None:
        if detail is None:
            detail = FORBIDDEN_DETAIL if self.project_id is None else PROJECT_FORBIDDEN_DETAIL
        self.close("forbidden", error_frame("forbidden", 403, detail, title="Forbidden"))


def both(first: Permission | None, second: Permission | None) -> Permission | None:
    """A rule that allows what both allow (either may be absent)."""
    if first is None or second is None:
        return first or second

    def rule(access: Access, activity: Activity) -> bool:
        return first(access, activity) and second(access, activity)

    return rule


def route(manager: SubscriberManager[Subscriber], activity: Activity) -> int:
    """Indexed lookup, then each candidate's own filter, then send; returns how many got it.

    An organization's activity goes to its organization's bucket and to its project's;
    a public one to the public bucket. The frame is encoded at most once.
    """
    org = activity.organization_id
    candidates: Iterable[Subscriber]
    if org is None:
        candidates = manager.get_by_index(PUBLIC_KEY)
    else:
        candidates = manager.get_by_index(organization_key(org))
        project = activity.project_id
        if project is not None:
            in_project = manager.get_by_index(project_key(project))
            if in_project:
                candidates = (*candidates, *in_project)
    if not candidates:
        return 0
    frame: bytes | None = None
    activity_id = activity.id
    sent = 0
    for sub in candidates:
        if isinstance(sub, SliceSubscriber) and sub.accepts(activity):
            if frame is None:
                frame = change_frame(activity_id, render_message(activity))
            sub.deliver(activity_id, frame)
            sent += 1
    return sent


class AccessIndex:
    """Every open member stream of an organization, whatever its index key: the
    lifecycle events find the streams they concern here.

    The streams indexed by their organization's key are found in the subscriber
    manager's bucket; only the others (a project's stream) are kept here as well, so
    an organization stream costs no memory of its own in this index.
    """

    __slots__ = ("_elsewhere", "_manager")

    def __init__(self, manager: SubscriberManager[Subscriber]) -> None:
        self._manager = manager
        self._elsewhere: dict[str, dict[str, MemberSubscriber]] = {}

    def add(self, sub: MemberSubscriber) -> None:
        if sub.index_key != organization_key(sub.organization_id):
            self._elsewhere.setdefault(sub.organization_id, {})[sub.id] = sub

    def discard(self, sub: MemberSubscriber) -> None:
        bucket = self._elsewhere.get(sub.organization_id)
        if bucket is not None and bucket.pop(sub.id, None) is not None and not bucket:
            del self._elsewhere[sub.organization_id]

    def in_organization(self, organization_id: str) -> list[MemberSubscriber]:
        found = [
            s
            for s in self._manager.get_by_index(organization_key(organization_id))
            if isinstance(s, MemberSubscriber)
        ]
        found.extend(self._elsewhere.get(organization_id, {}).values())
        return found

    def all(self) -> list[MemberSubscriber]:
        return [s for s in self._manager.get_all() if isinstance(s, MemberSubscriber)]


def apply_membership_change(index: AccessIndex, activity: Activity) -> None:
    """Update the snapshot of the member's open streams; end those that lost access."""
    data: Any = activity.data_value()
    if activity.organization_id is None or not isinstance(data, dict):
        return
    for sub in index.in_organization(activity.organization_id):
        if sub.user_id == data.get("userId"):
            apply_membership(sub, activity)


def apply_membership(sub: MemberSubscriber, activity: Activity) -> None:
    """One membership event of ``sub``'s user, in log order (held while loading)."""
    if sub.held_membership_events is not None:
        sub.held_membership_events.append(activity)
        return
    if activity.id <= sub.membership_version or activity.organization_id is None:
        return
    if activity.action == "delete":
        sub.memberships.pop(activity.entity_id, None)
    else:
        data: Any = activity.data_value()
        sub.memberships[activity.entity_id] = Grant(
            activity.organization_id, data.get("projectId"), data.get("role", "member")
        )
    sub.refresh_scope()
    if sub.scope is None:
        sub.forbid()


def end_organization_streams(index: AccessIndex, activity: Activity) -> None:
    """``organization.deleted``: every stream of that organization ends (``forbidden``)."""
    for sub in index.in_organization(activity.entity_id):
        sub.forbid("This organization was deleted.")


def end_session_streams(index: AccessIndex, activity: Activity) -> None:
    """``session.revoked`` (sign-out): the streams opened with that session end (``forbidden``)."""
    for sub in index.all():
        if sub.session_id == activity.entity_id:
            sub.forbid("This session was signed out.")
