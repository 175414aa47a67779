"""What an activity is, which ones exist, and its one wire serialisation."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal

import orjson

Action = Literal["create", "update", "delete"]

# Which entity types exist is the application's to declare (``Syncstream.entity``);
# nothing here names one.

_VERBS: Final = {"create": "created", "update": "updated", "delete": "deleted"}


def event_name(entity_type: str, action: str) -> str:
    """``task`` + ``create`` → ``task.created``: the bus event an activity is emitted as."""
    return f"{entity_type}.{_VERBS[action]}"


@dataclass(slots=True)
class NewActivity:
    """An activity about to be written; ``changed_keys``, ``tx`` and ``data`` are Python values."""

    action: Action
    entity_type: str
    entity_id: str
    organization_id: str | None
    project_id: str | None
    user_id: str | None
    data: object | None
    changed_keys: list[str] | None = None
    tx: dict[str, object] | None = None
    idempotency_key: str | None = None
    #: The bus event, when not ``<entity_type>.<action>d`` (a sign-out: ``session.revoked``).
    event: str | None = None

    @property
    def type(self) -> str:
        return self.event or event_name(self.entity_type, self.action)


@dataclass(slots=True)
class Activity:
    """A committed activity as read back from the log.

    JSON fields stay as the text stored in the log, so rendering splices them in
    unchanged and every delivery of one activity carries the same bytes. The time is
    kept as the API shows it (``iso_ms``): every activity read is rendered, few are
    asked for a datetime.
    """

    id: int
    type: str
    action: str
    entity_type: str
    entity_id: str
    organization_id: str | None
    project_id: str | None
    user_id: str | None
    changed_keys: str | None
    tx: str | None
    data: str | None
    created_iso: str

    @property
    def created_at(self) -> datetime:
        return datetime.fromisoformat(self.created_iso)

    def data_value(self) -> object:
        return None if self.data is None else orjson.loads(self.data)


def render_message(activity: Activity) -> bytes:
    """The ``StreamMessage`` JSON of an activity: the only place it is serialised."""
    # Runs once per activity read (catch-up replays tens of thousands a second): the
    # fragments are inlined rather than built by a helper call each.
    changed_keys, tx, data = activity.changed_keys, activity.tx, activity.data
    return orjson.dumps(
        {
            "activityId": str(activity.id),
            "action": activity.action,
            "entityType": activity.entity_type,
            "entityId": activity.entity_id,
            "organizationId": activity.organization_id,
            "projectId": activity.project_id,
            "changedKeys": None if changed_keys is None else orjson.Fragment(changed_keys),
            "createdAt": activity.created_iso,
            "tx": None if tx is None else orjson.Fragment(tx),
            "data": None if data is None else orjson.Fragment(data),
        }
    )
