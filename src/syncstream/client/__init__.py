"""The Python client of syncstream's streams.

::

    from syncstream.client import FileCursorStore, SyncClient

    async def reset_cache(error: MustRefetch) -> None:
        cache.clear()  # the server cannot continue from our cursor: start over

    async with SyncClient(url, token, cursor_store=FileCursorStore("cursors.json"),
                          on_must_refetch=reset_cache) as client:
        async for message in client.org_stream("acme", entity_types=["attachment"]):
            cache.apply(message)

Or let a live collection apply the changes, and write with ``tx`` so your own writes are recognised::

    async with SyncClient(url) as client:
        await client.sign_in("ada@example.com", password)
        async with client.org_collection("acme", entity_types=["attachment"]) as attachments:
            await attachments.ready()
            attachments.on_change(lambda change: print(change.action, change.entity_id, change.own))
            await client.create("organizations/acme/attachments", {"name": "plan.pdf"})

For scripts without ``async``, :class:`syncstream.client.sync.BlockingClient` is the same client, blocking.

It depends on the server package only for the wire format (:mod:`syncstream.stream.sse` and
:mod:`syncstream.stream.messages`), so it can be used, and tested, against any server of the contract.
"""

from syncstream.client.backoff import Backoff
from syncstream.client.collection import ChangeCallback, CollectionChange, LiveCollection, ResetCallback
from syncstream.client.core import DEFAULT_READ_TIMEOUT, SyncClient
from syncstream.client.cursors import CursorStore, FileCursorStore, MemoryCursorStore
from syncstream.client.errors import (
    BadRequest,
    Forbidden,
    MustRefetch,
    NotAStream,
    NotFound,
    ProblemError,
    ProtocolError,
    RefetchLoopError,
    StreamUnavailable,
    SyncStreamError,
    Unauthorized,
)
from syncstream.client.events import (
    CaughtUp,
    Change,
    Connected,
    Connecting,
    Disconnected,
    Heartbeat,
    Reset,
    StreamEvent,
    StreamState,
)
from syncstream.client.follow import ConnectedCallback, DisconnectedCallback, Follower
from syncstream.client.position import MustRefetchCallback
from syncstream.client.subscription import Subscription
from syncstream.client.wire import stream_key
from syncstream.stream.messages import JsonPage, OffsetFrame, Problem, StreamMessage, TxInfo

__all__ = [
    "DEFAULT_READ_TIMEOUT",
    "Backoff",
    "BadRequest",
    "CaughtUp",
    "Change",
    "ChangeCallback",
    "CollectionChange",
    "Connected",
    "ConnectedCallback",
    "Connecting",
    "CursorStore",
    "Disconnected",
    "DisconnectedCallback",
    "FileCursorStore",
    "Follower",
    "Forbidden",
    "Heartbeat",
    "JsonPage",
    "LiveCollection",
    "MemoryCursorStore",
    "MustRefetch",
    "MustRefetchCallback",
    "NotAStream",
    "NotFound",
    "OffsetFrame",
    "Problem",
    "ProblemError",
    "ProtocolError",
    "RefetchLoopError",
    "Reset",
    "ResetCallback",
    "StreamEvent",
    "StreamMessage",
    "StreamState",
    "StreamUnavailable",
    "Subscription",
    "SyncClient",
    "SyncStreamError",
    "TxInfo",
    "Unauthorized",
    "stream_key",
]
