"""The team's own read rule, on top of syncstream's organization/project rule."""

from __future__ import annotations

import orjson

from syncstream import Access, Activity, is_org_admin


def may_read(access: Access, activity: Activity) -> bool:
    """Internal comments are for organization admins; everything else for whoever may
    read the project (which syncstream has checked already)."""
    org = activity.organization_id
    if activity.entity_type != "comment" or activity.data is None or org is None:
        return True
    return not orjson.loads(activity.data).get("internal") or is_org_admin(access, org)
