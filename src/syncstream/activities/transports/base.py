"""The doorbell: how one server process tells the others "the activity log grew".

Every process tails the activity log itself, from its own last ID. The doorbell only makes that
tailing prompt: after committing a write a process rings it with the new activity ID, and every
process (the ringer included) is told "there is more, up to at least ID n". A lost ring loses no
data, because each process also polls the log slowly; so a doorbell never makes a write fail and
never holds the server back from starting when the bus is down. It rides on an engine the
deployment already has (PostgreSQL, Redis or NATS) instead of inventing a broker.
"""

from __future__ import annotations

import abc
import hashlib
import logging
import os
from collections.abc import Callable
from typing import ClassVar, TypeAlias
from urllib.parse import unquote, urlsplit, urlunsplit

__all__ = [
    "DEFAULT_CHANNEL",
    "Doorbell",
    "RingHandler",
    "call_handler",
    "channel_for_database",
    "doorbell_from_url",
    "redact_url",
]

logger = logging.getLogger("syncstream.bus")

RingHandler: TypeAlias = Callable[[int | None], None]
"""Told about a ring, in the event loop thread.

An int is the newest activity ID announced. None means "unknown, go and look": it follows a
reconnect, because rings may have been missed while the bus was out of reach.
"""

DEFAULT_CHANNEL = "syncstream"

POSTGRES_SCHEMES = frozenset({"postgresql", "postgres", "postgresql+asyncpg"})
REDIS_SCHEMES = frozenset({"redis", "rediss"})
NATS_SCHEMES = frozenset({"nats"})
MEMORY_SCHEMES = frozenset({"memory"})


class Doorbell(abc.ABC):
    """One process's connection to the bus: it rings the bell and hears every ring, its own included."""

    crosses_processes: ClassVar[bool]
    """False only for the in-process bell, which cannot serve more than one server process."""

    @abc.abstractmethod
    async def start(self, on_ring: RingHandler) -> None:
        """Start listening and return promptly, even when the bus is unreachable.

        Networked bells connect and subscribe in the background and keep reconnecting (with
        jittered exponential backoff) for as long as they are open, so that the server starts and
        serves from its poll while the bus is down.
        """

    @abc.abstractmethod
    async def ring(self, activity_id: int) -> None:
        """Announce that the activity log now reaches at least `activity_id`.

        Never raises on a transport failure: the write that rings has already committed, and the
        slow poll delivers it anyway, so a failure is only logged and marks the bell unhealthy.
        """

    @abc.abstractmethod
    async def close(self) -> None:
        """Stop listening and release connections; calling it again does nothing."""

    @property
    @abc.abstractmethod
    def healthy(self) -> bool:
        """Whether rings are being heard right now (False while disconnected), for /health."""


def call_handler(on_ring: RingHandler, activity_id: int | None) -> None:
    """Call a ring handler so that a failing handler cannot stop the bell from delivering later rings."""
    try:
        on_ring(activity_id)
    except Exception:
        logger.exception("ring handler %r failed for activity %s", on_ring, activity_id)


def redact_url(url: str) -> str:
    """Return `url` without its password, so that it can be logged and shown in errors."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rpartition("@")[2]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


_SCHEME_FAMILIES = {"postgres": "postgresql", "postgresql": "postgresql", "sqlite": "sqlite"}
_DEFAULT_PORTS = {"postgresql": 5432}


def channel_for_database(database_url: str) -> str:
    """The default channel of a deployment: ``syncstream-`` and 12 hex digits of a hash of
    the database it serves.

    A bus is shared by everything on one Redis or NATS server, and every deployment rings
    on it. Deriving the channel from the database means the processes of one deployment
    (one database) hear each other with nothing to configure, and two deployments with two
    databases never ring each other's bell. The hash covers what names the database, not
    how one logs in: the backend (``postgresql+asyncpg`` and ``postgres`` are
    ``postgresql``), host (lower-cased), port (PostgreSQL's 5432 when absent) and database
    name; for SQLite the file's absolute path. User, password and query options are left
    out, so processes that connect with different credentials or options still agree.
    Processes that reach one database under different host names (a DNS alias, an IP)
    derive different channels: set ``SYNCSTREAM_BUS_CHANNEL`` to the same value on each.
    """
    parts = urlsplit(database_url)
    scheme = parts.scheme.lower().partition("+")[0]
    family = _SCHEME_FAMILIES.get(scheme, scheme)
    if family == "sqlite":
        # sqlite:///relative.db and sqlite:////abs.db: the path after the third slash.
        path = unquote(parts.path[1:]) if parts.path.startswith("/") else unquote(parts.path)
        name = path if path in ("", ":memory:") else os.path.realpath(path)
        identity = f"sqlite:{name}"
    else:
        host = (parts.hostname or "").lower()
        try:
            port = parts.port or _DEFAULT_PORTS.get(family, 0)
        except ValueError:  # not a port: the database refuses it; the channel need not
            port = 0
        identity = f"{family}://{host}:{port}{unquote(parts.path) or '/'}"
    return "syncstream-" + hashlib.sha256(identity.encode()).hexdigest()[:12]


def doorbell_from_url(url: str, *, channel: str = DEFAULT_CHANNEL) -> Doorbell:
    """Build the doorbell a bus URL names; only the chosen transport's client library is imported.

    memory:// (one process only), postgresql:// (also postgres:// and postgresql+asyncpg://),
    redis:// or rediss://, nats://. Nothing connects until `start()`.
    """
    scheme = urlsplit(url).scheme.lower()
    if scheme in MEMORY_SCHEMES:
        from .memory import MemoryDoorbell

        return MemoryDoorbell(channel=channel)
    if scheme in POSTGRES_SCHEMES:
        from .postgres import PostgresDoorbell

        return PostgresDoorbell(url, channel=channel)
    if scheme in REDIS_SCHEMES:
        from .redis_bell import RedisDoorbell

        return RedisDoorbell(url, channel=channel)
    if scheme in NATS_SCHEMES:
        from .nats_bell import NatsDoorbell

        return NatsDoorbell(url, channel=channel)
    raise ValueError(
        f"unsupported bus URL {redact_url(url)!r}: expected memory://, postgresql:// (or postgres://, "
        "postgresql+asyncpg://), redis:// (or rediss://) or nats://"
    )
