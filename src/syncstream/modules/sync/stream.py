"""The organization sync stream: who receives which org activity, and how.

Small composable pieces, each testable alone: :func:`org_index_key` finds the
candidates in O(1), :func:`should_receive_org_event` is the pure filter,
:func:`send_to_org_subscriber` queues, and :func:`route_to_org_subscribers` puts them
together. Membership changes, organization deletion and sign-out arrive through the
same ordered log and are applied here before the next activity is routed.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from syncstream.activities.model import Activity, render_message
from syncstream.permissions import ORG_SCOPED_TYPES, Access, Grant, ReadScope, read_scope
from syncstream.stream.helpers import change_frame, error_frame, write_change
from syncstream.stream.manager import SubscriberManager
from syncstream.stream.subscriber import Subscriber


def org_index_key(organization_id: str) -> str:
    return f"org:{organization_id}"


class OrgStreamSubscriber(Subscriber):
    """One open org stream: its user, a snapshot of their memberships in the org, and
    the entity types asked for. The snapshot is kept current by membership events.

    Without ``memberships`` the subscriber starts *loading*: it sees nothing, and the
    user's membership events are held until :meth:`reset_memberships` brings the
    snapshot (read once registered) and replays those the read did not contain. So a
    stream reads its memberships once, after registration, with no window in which an
    event is applied to a snapshot about to be replaced.
    """

    __slots__ = (
        "entity_types",
        "held_membership_events",
        "membership_version",
        "memberships",
        "organization_id",
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
        entity_types: frozenset[str] | None,
        cursor: int,
        max_queued: int,
    ) -> None:
        super().__init__(index_key=org_index_key(organization_id), cursor=cursor, max_queued=max_queued)
        self.user_id = user_id
        self.session_id = session_id
        self.organization_id = organization_id
        self.system_admin = system_admin
        self.memberships = memberships if memberships is not None else {}
        #: Membership events up to this activity ID are already in ``memberships``.
        self.membership_version = 0
        self.held_membership_events: list[Activity] | None = None if memberships is not None else []
        self.entity_types = entity_types if entity_types is not None else ORG_SCOPED_TYPES
        self.scope: ReadScope | None = None
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
        self.scope = read_scope(access, self.organization_id)


def should_receive_org_event(sub: OrgStreamSubscriber, activity: Activity) -> bool:
    """Pure: may ``sub`` see ``activity``, judged on the entity as it stands after the change?"""
    return (
        activity.organization_id == sub.organization_id
        and activity.entity_type in sub.entity_types
        and sub.scope is not None
        and sub.scope.allows(activity.project_id)
    )


def send_to_org_subscriber(sub: OrgStreamSubscriber, activity_id: int, frame: bytes) -> None:
    write_change(sub, activity_id, frame)


def org_subscribers(
    manager: SubscriberManager[Subscriber], organization_id: str
) -> list[OrgStreamSubscriber]:
    return [
        s for s in manager.get_by_index(org_index_key(organization_id)) if isinstance(s, OrgStreamSubscriber)
    ]


def route_to_org_subscribers(manager: SubscriberManager[Subscriber], activity: Activity) -> int:
    """Indexed lookup, then filter, then send; returns how many subscribers got it.

    The frame is encoded at most once and the same bytes go to every recipient.
    """
    if activity.organization_id is None:
        return 0
    candidates: Collection[Subscriber] = manager.get_by_index(org_index_key(activity.organization_id))
    if not candidates:
        return 0
    frame: bytes | None = None
    activity_id = activity.id
    sent = 0
    for sub in candidates:
        if isinstance(sub, OrgStreamSubscriber) and should_receive_org_event(sub, activity):
            if frame is None:
                frame = change_frame(activity_id, render_message(activity))
            send_to_org_subscriber(sub, activity_id, frame)
            sent += 1
    return sent


FORBIDDEN_DETAIL = "You no longer have access to this organization."


def forbid(sub: OrgStreamSubscriber, detail: str = FORBIDDEN_DETAIL) -> None:
    sub.close("forbidden", error_frame("forbidden", 403, detail, title="Forbidden"))


def apply_membership_change(manager: SubscriberManager[Subscriber], activity: Activity) -> None:
    """Update the snapshot of the member's open streams; end those that lost all access."""
    data: Any = activity.data_value()
    if activity.organization_id is None or not isinstance(data, dict):
        return
    for sub in org_subscribers(manager, activity.organization_id):
        if sub.user_id == data.get("userId"):
            apply_membership(sub, activity)


def apply_membership(sub: OrgStreamSubscriber, activity: Activity) -> None:
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
        forbid(sub)


def end_organization_streams(manager: SubscriberManager[Subscriber], activity: Activity) -> None:
    for sub in org_subscribers(manager, activity.entity_id):
        forbid(sub, "This organization was deleted.")


def end_session_streams(manager: SubscriberManager[Subscriber], activity: Activity) -> None:
    for sub in manager.get_all():
        if isinstance(sub, OrgStreamSubscriber) and sub.session_id == activity.entity_id:
            forbid(sub, "This session was signed out.")
