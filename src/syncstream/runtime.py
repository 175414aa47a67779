"""The running parts of one server process, built once at start and shared by modules."""

from __future__ import annotations

from dataclasses import dataclass, field

from syncstream.activities.bus import ActivityBus
from syncstream.activities.tailer import LogTailer
from syncstream.activities.transports import Doorbell
from syncstream.activities.writer import ActivityWriter
from syncstream.auth.session_activity import SessionActivity
from syncstream.auth.sessions import Caller
from syncstream.config import Settings
from syncstream.db.engine import Database
from syncstream.db.read_cache import ReadCache
from syncstream.db.views import OrgInfo
from syncstream.metrics import Metrics
from syncstream.stream.manager import SubscriberManager
from syncstream.stream.quota import StreamQuota
from syncstream.stream.subscriber import Subscriber


@dataclass(slots=True)
class Runtime:
    settings: Settings
    database: Database
    doorbell: Doorbell
    bus: ActivityBus
    writer: ActivityWriter
    tailer: LogTailer
    subscribers: SubscriberManager[Subscriber]
    metrics: Metrics
    #: Open streams per user, per client address and in all (syncstream.admission).
    quota: StreamQuota
    #: Session lifetimes and last use (auth/session_activity.py).
    sessions: SessionActivity
    #: Token hash → caller, and org ID or slug → org: read by nearly every request,
    #: cleared by the writes that change them (modules/common.py wires that).
    callers: ReadCache[str, Caller] = field(default_factory=ReadCache)
    organizations: ReadCache[str, OrgInfo] = field(default_factory=ReadCache)
    #: Set when the server is stopping: no new stream may open (it would hold shutdown).
    closing: bool = False
