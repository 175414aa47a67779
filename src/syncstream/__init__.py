"""syncstream: every change of your data, live, to the clients allowed to see it.

The public surface of the library. Declare your entity types, compose your streams,
mount them into your FastAPI app::

    from syncstream import Syncstream, in_project

    sync = Syncstream()
    sync.entity("task", Task, scope=in_project(), shape=task_json)
    app = FastAPI(lifespan=sync.lifespan)
    sync.install(app)

Names are loaded on first use, so ``import syncstream.client`` stays light (it needs
none of the server). Everything listed in ``__all__`` is public and typed; modules
whose names start with ``_`` are not.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from syncstream._access import (
        AccessIndex,
        MemberSubscriber,
        Permission,
        PublicSubscriber,
        SliceSubscriber,
        apply_membership_change,
        end_organization_streams,
        end_session_streams,
        route,
    )
    from syncstream._entities import (
        EntityType,
        Scope,
        UnrecordedWriteError,
        entity_type,
        in_organization,
        in_project,
        public,
    )
    from syncstream._library import Syncstream
    from syncstream._streams import StreamPaths, StreamSlice, load_memberships, open_slice
    from syncstream.activities.log import read_after
    from syncstream.activities.model import Activity, NewActivity
    from syncstream.activities.writer import WriteTransaction
    from syncstream.auth.sessions import Caller
    from syncstream.config import Settings
    from syncstream.modules.common import CallerDep, current_caller
    from syncstream.permissions import Access, Grant, ReadScope, is_member, is_org_admin, read_scope
    from syncstream.problems import Problem

__all__ = [
    "Access",
    "AccessIndex",
    "Activity",
    "Caller",
    "CallerDep",
    "EntityType",
    "Grant",
    "MemberSubscriber",
    "NewActivity",
    "Permission",
    "Problem",
    "PublicSubscriber",
    "ReadScope",
    "Scope",
    "Settings",
    "SliceSubscriber",
    "StreamPaths",
    "StreamSlice",
    "Syncstream",
    "UnrecordedWriteError",
    "WriteTransaction",
    "apply_membership_change",
    "current_caller",
    "end_organization_streams",
    "end_session_streams",
    "entity_type",
    "in_organization",
    "in_project",
    "is_member",
    "is_org_admin",
    "load_memberships",
    "open_slice",
    "public",
    "read_after",
    "read_scope",
    "route",
]

_HOME = {
    "AccessIndex": "syncstream._access",
    "MemberSubscriber": "syncstream._access",
    "Permission": "syncstream._access",
    "PublicSubscriber": "syncstream._access",
    "SliceSubscriber": "syncstream._access",
    "apply_membership_change": "syncstream._access",
    "end_organization_streams": "syncstream._access",
    "end_session_streams": "syncstream._access",
    "route": "syncstream._access",
    "EntityType": "syncstream._entities",
    "Scope": "syncstream._entities",
    "UnrecordedWriteError": "syncstream._entities",
    "in_organization": "syncstream._entities",
    "in_project": "syncstream._entities",
    "public": "syncstream._entities",
    "Syncstream": "syncstream._library",
    "entity_type": "syncstream._entities",
    "StreamPaths": "syncstream._streams",
    "StreamSlice": "syncstream._streams",
    "load_memberships": "syncstream._streams",
    "open_slice": "syncstream._streams",
    "read_after": "syncstream.activities.log",
    "Activity": "syncstream.activities.model",
    "NewActivity": "syncstream.activities.model",
    "WriteTransaction": "syncstream.activities.writer",
    "Caller": "syncstream.auth.sessions",
    "Settings": "syncstream.config",
    "CallerDep": "syncstream.modules.common",
    "current_caller": "syncstream.modules.common",
    "Access": "syncstream.permissions",
    "Grant": "syncstream.permissions",
    "ReadScope": "syncstream.permissions",
    "is_member": "syncstream.permissions",
    "is_org_admin": "syncstream.permissions",
    "read_scope": "syncstream.permissions",
    "Problem": "syncstream.problems",
}


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module 'syncstream' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # found directly from now on
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
