"""The team's own read rule, on top of syncstream's organization/project rule."""

from __future__ import annotations

import orjson

from syncstream import Access, Activity


def is_org_admin(access: Access, organization_id: str | None) -> bool:
    return access.system_admin or any(
        g.organization_id == organization_id and g.project_id is None and g.role == "admin"
        for g in access.grants
    )


def may_read(access: Access, activity: Activity) -> bool:
    """Internal comments are for organization admins; everything else for whoever may
    read the project (which syncstream has checked already)."""
    if activity.entity_type != "comment" or activity.data is None:
        return True
    return not orjson.loads(activity.data).get("internal") or is_org_admin(access, activity.organization_id)
