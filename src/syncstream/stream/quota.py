"""How many streams may be open: per holder (a user, a client address) and in the process.

An open stream holds a socket (a file descriptor) and a subscriber for as long as its
client likes, so whoever can open streams can exhaust both. :class:`StreamQuota` counts
the open streams of each holder and of the whole process and refuses past the bounds;
each stream that got a :class:`Lease` gives it back when it ends. Like the subscriber
manager it knows nothing of users or addresses: the handler names the holders
(``user:<id>``, ``address:<ip>``) and which limit applies to each.

Not thread-safe: used from one event loop, where no ``await`` interleaves with it.
"""

from __future__ import annotations

import functools
import ipaddress
import sys
from collections.abc import Mapping, Sequence

__all__ = ["Lease", "QuotaExceeded", "StreamQuota", "address_holder"]


class QuotaExceeded(Exception):
    """A stream refused: ``kind`` is the limit that was reached (a holder kind, or
    ``"process"`` for the process-wide cap), ``limit`` its value."""

    def __init__(self, kind: str, limit: int) -> None:
        super().__init__(f"{kind} stream limit {limit} reached")
        self.kind = kind
        self.limit = limit


class Lease:
    """One open stream's place in the counts; :meth:`release` gives it back (once)."""

    __slots__ = ("_holders", "_quota")

    def __init__(self, quota: StreamQuota, holders: tuple[str, ...]) -> None:
        self._quota: StreamQuota | None = quota
        self._holders = holders

    def release(self) -> None:
        quota, self._quota = self._quota, None
        if quota is not None:
            quota._give_back(self._holders)

    #: A lease is its own release callback: handing ``lease.release`` to a stream would
    #: hold a bound method per stream as well as the lease.
    __call__ = release


class StreamQuota:
    """Open streams per holder kind (``limits``: kind → streams per holder) and in all
    (``total``)."""

    def __init__(self, limits: Mapping[str, int], total: int) -> None:
        self.limits = dict(limits)
        self.total = total
        self.open = 0
        self._counts: dict[str, int] = {}

    def acquire(self, holders: Sequence[tuple[str, str]]) -> Lease:
        """Count one more stream for each ``(kind, holder)``, or raise :class:`QuotaExceeded`
        (counting nothing) if any of them, or the process, is at its limit."""
        if self.open >= self.total:
            raise QuotaExceeded("process", self.total)
        keys = []
        for kind, holder in holders:
            # Interned: every lease of one holder shares the key, not a copy per stream.
            key = sys.intern(f"{kind}:{holder}")
            limit = self.limits[kind]
            if self._counts.get(key, 0) >= limit:
                raise QuotaExceeded(kind, limit)
            keys.append(key)
        for key in keys:
            self._counts[key] = self._counts.get(key, 0) + 1
        self.open += 1
        return Lease(self, tuple(keys))

    def count(self, kind: str, holder: str) -> int:
        return self._counts.get(f"{kind}:{holder}", 0)

    def _give_back(self, keys: tuple[str, ...]) -> None:
        self.open -= 1
        for key in keys:
            left = self._counts[key] - 1
            if left:
                self._counts[key] = left
            else:
                del self._counts[key]  # holders come and go: keep only those with streams


@functools.lru_cache(maxsize=4096)
def address_holder(host: str) -> str:
    """The holder a client address counts as: the address itself, or for IPv6 its /64
    (one subscriber line or host gets a whole /64, so counting single addresses would
    let one client take as many quotas as it likes). Cached: parsing the address was a
    twentieth of a stream open, and a client reconnects from the same one."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host  # a Unix socket path or a name: taken as it is
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)
