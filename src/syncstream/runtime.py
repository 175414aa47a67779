"""The running parts of one server process, built once at start and shared by modules."""

from __future__ import annotations

from dataclasses import dataclass, field

from syncstream._access import AccessIndex
from syncstream.activities.bus import ActivityBus
from syncstream.activities.tailer import LogTailer
from syncstream.activities.transports import Doorbell, channel_for_database, doorbell_from_url
from syncstream.activities.writer import ActivityWriter
from syncstream.admission import stream_quota
from syncstream.auth.session_activity import SessionActivity
from syncstream.auth.sessions import Caller, record_last_used
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
    #: Every open member stream by organization, for membership, org and sign-out events.
    access: AccessIndex
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


#: The identity layer's events (memberships, organizations, sign-out). They ride in the
#: log so every process applies them in log order (a membership change takes effect
#: before the next activity is routed), but no stream sends them to a client.
IDENTITY_EVENTS = frozenset(
    {
        "membership.created",
        "membership.updated",
        "membership.deleted",
        "organization.deleted",
        "session.revoked",
    }
)


def build_doorbell(settings: Settings) -> Doorbell:
    """The bus URL's doorbell, on ``SYNCSTREAM_BUS_CHANNEL`` or else the channel derived
    from the database: deployments sharing a Redis or NATS server stay apart."""
    channel = settings.bus_channel or channel_for_database(settings.database_url)
    return doorbell_from_url(settings.bus_url, channel=channel)


def build_runtime(settings: Settings) -> Runtime:
    """The running parts of one process; the bus knows the identity events, and each
    declared entity type adds its own."""
    database = Database.connect(
        settings.database_url, pool_size=settings.database_pool_size, serial=True, capture=settings.capture
    )
    doorbell = build_doorbell(settings)
    bus = ActivityBus(IDENTITY_EVENTS)
    subscribers: SubscriberManager[Subscriber] = SubscriberManager()
    writer = ActivityWriter(database, doorbell)

    async def record_sessions_used(used: dict[str, float]) -> None:
        await writer.run(lambda tx: record_last_used(tx.session, used))

    tailer = LogTailer(
        database,
        bus,
        doorbell,
        poll_seconds=settings.poll_seconds,
        max_bytes=settings.page_bytes,
        recent_count=settings.recent_activities,
        recent_bytes=settings.recent_bytes,
    )
    writer.routed = tailer.routed  # read your writes: on a stream opened after the answer
    return Runtime(
        settings=settings,
        database=database,
        doorbell=doorbell,
        bus=bus,
        writer=writer,
        tailer=tailer,
        subscribers=subscribers,
        metrics=Metrics(subscribers.count),
        access=AccessIndex(subscribers),
        quota=stream_quota(settings),
        sessions=SessionActivity(
            idle_seconds=settings.session_idle_seconds,
            max_seconds=settings.session_max_seconds,
            write=record_sessions_used,
        ),
    )
