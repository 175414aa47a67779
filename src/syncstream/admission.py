"""What the process may hold: its open-file limit, and the streams that fit under it.

Every open stream is a socket, and a socket is a file descriptor. A process that runs out
of descriptors cannot accept a connection, open a database file or answer ``/health``, so
the number of streams is capped below the limit, leaving a reserve for everything else
(REST requests, connections whose head is still arriving, the database pool, log files).

At start the soft ``RLIMIT_NOFILE`` is raised to the hard one (as nginx's
``worker_rlimit_nofile`` and most servers do): the soft limit is often the historical
1,024, which 13 KiB streams would reach long before memory is a concern.
"""

from __future__ import annotations

import logging
import resource
from dataclasses import dataclass

from syncstream.config import Settings
from syncstream.stream.quota import StreamQuota

__all__ = ["OpenFiles", "raise_open_file_limit", "stream_cap", "stream_quota"]

logger = logging.getLogger("syncstream")

#: Descriptors kept for everything but streams: a quarter of the limit, at least 256
#: (but never more than half of it).
RESERVE_FRACTION = 4
RESERVE_MIN = 256


@dataclass(frozen=True, slots=True)
class OpenFiles:
    before: int
    soft: int
    hard: int


def raise_open_file_limit() -> OpenFiles:
    """Raise the soft ``RLIMIT_NOFILE`` to the hard one where allowed; both are returned."""
    before, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    soft = before
    if hard != resource.RLIM_INFINITY and before < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError) as exc:  # a sandbox may refuse; the lower limit stands
            logger.warning("could not raise the open-file limit from %d to %d: %s", before, hard, exc)
    return OpenFiles(before, soft, hard)


def stream_cap(open_files: int, configured: int | None) -> int:
    """The most streams one process holds: the open-file limit less a reserve, or the
    configured cap if lower."""
    reserve = min(max(RESERVE_MIN, open_files // RESERVE_FRACTION), open_files // 2)
    derived = max(1, open_files - reserve)
    if configured is None:
        return derived
    if configured > derived:
        logger.warning(
            "SYNCSTREAM_MAX_STREAMS=%d does not fit under the open-file limit %d: capped at %d",
            configured,
            open_files,
            derived,
        )
        return derived
    return configured


def stream_quota(settings: Settings) -> StreamQuota:
    """Raise the open-file limit, and the stream quota that fits under it (logged)."""
    files = raise_open_file_limit()
    cap = stream_cap(files.soft, settings.max_streams)
    hard = "unlimited" if files.hard == resource.RLIM_INFINITY else str(files.hard)
    logger.info(
        "open files: soft limit %d (was %d), hard limit %s; at most %d streams, %d per user, %d per address",
        files.soft,
        files.before,
        hard,
        cap,
        settings.streams_per_user,
        settings.streams_per_address,
    )
    return StreamQuota({"user": settings.streams_per_user, "address": settings.streams_per_address}, cap)
