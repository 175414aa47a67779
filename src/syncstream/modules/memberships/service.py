"""Membership serialisation and the activity every membership change records."""

from __future__ import annotations

from typing import Any

from syncstream.activities.model import Action, NewActivity
from syncstream.db.types import iso_ms


def membership_json(m: Any) -> dict[str, Any]:
    """Works for ORM objects and Core rows alike (both have the attributes)."""
    return {
        "id": m.id,
        "userId": m.user_id,
        "organizationId": m.organization_id,
        "projectId": m.project_id,
        "role": m.role,
        "createdAt": iso_ms(m.created_at),
    }


def membership_activity(action: Action, m: Any, actor_id: str) -> NewActivity:
    """Membership changes go through the log (never to clients): every process applies
    them to its open streams in log order, before routing the activities after them."""
    return NewActivity(
        action=action,
        entity_type="membership",
        entity_id=m.id,
        organization_id=m.organization_id,
        project_id=m.project_id,
        user_id=actor_id,
        data=membership_json(m),
    )
