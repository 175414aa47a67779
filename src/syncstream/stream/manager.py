"""A deliberately dumb registry of stream subscribers.

Routing an activity must find its candidate subscribers without scanning every open stream, so subscribers are
indexed by a key that the stream handler chooses (``org:<id>``, ``public``, ...). The manager only stores
and looks up; it knows nothing of organisations, permissions or queues, so those rules stay in one place (the
handler and the router) and this bottom layer can be tested exhaustively on its own.

It is not thread-safe: it is meant to be used from one event loop, where no ``await`` can interleave with its
methods.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Generic, Protocol, TypeVar

__all__ = ["Indexed", "SubscriberManager"]


class Indexed(Protocol):
    """What the manager needs of a subscriber: a unique ``id`` and the ``index_key`` it is routed by.

    Both are declared as read-only properties so that plain attributes, properties and frozen dataclasses all
    satisfy the protocol. ``index_key=None`` means "reachable by id only", for subscribers that no routing key
    should find.
    """

    @property
    def id(self) -> str: ...

    @property
    def index_key(self) -> str | None: ...


S = TypeVar("S", bound=Indexed)

_EMPTY: tuple[()] = ()


class SubscriberManager(Generic[S]):
    """Subscribers by id, and by index key for O(1) routing lookups.

    ``index_key`` is read once, at :meth:`register`; the manager remembers the key it used, so a subscriber
    whose attribute later changes is still removed from the right bucket. To move a subscriber to another
    key, unregister and register it again.

    Buckets are dicts keyed by id: insertion-ordered (subscribers are served in the order they connected) with
    O(1) removal. A bucket is deleted as soon as it empties, so short-lived keys do not accumulate.
    """

    __slots__ = ("_by_id", "_index", "_key_of", "_snapshots")

    def __init__(self) -> None:
        self._by_id: dict[str, S] = {}
        self._key_of: dict[str, str | None] = {}
        self._index: dict[str, dict[str, S]] = {}
        # Immutable per-bucket snapshots handed out by get_by_index; dropped whenever the bucket changes.
        self._snapshots: dict[str, tuple[S, ...]] = {}

    def register(self, sub: S) -> None:
        """Add ``sub``. Raises ``ValueError`` if a subscriber with the same id is already registered.

        Refusing instead of replacing means a caller can never silently orphan another live stream.
        """
        sub_id = sub.id
        if sub_id in self._by_id:
            raise ValueError(f"a subscriber with id {sub_id!r} is already registered")
        key = sub.index_key
        self._by_id[sub_id] = sub
        self._key_of[sub_id] = key
        if key is not None:
            bucket = self._index.get(key)
            if bucket is None:
                self._index[key] = {sub_id: sub}
            else:
                bucket[sub_id] = sub
                self._snapshots.pop(key, None)

    def unregister(self, sub_or_id: S | str) -> S | None:
        """Remove a subscriber and return it, or return ``None`` if it was not registered. Idempotent.

        Given an id, removes whatever is registered under it. Given a subscriber object, removes it only if
        that very object is the one registered: a stream's late cleanup must not remove a newer subscriber
        that reused its id.
        """
        if isinstance(sub_or_id, str):
            sub_id = sub_or_id
            sub = self._by_id.pop(sub_id, None)
            if sub is None:
                return None
        else:
            sub_id = sub_or_id.id
            if self._by_id.get(sub_id) is not sub_or_id:
                return None
            sub = self._by_id.pop(sub_id)
        key = self._key_of.pop(sub_id)
        if key is not None:
            bucket = self._index[key]
            del bucket[sub_id]
            self._snapshots.pop(key, None)
            if not bucket:
                del self._index[key]
        return sub

    def get(self, id: str) -> S | None:
        """The subscriber registered under ``id``, or ``None``."""
        return self._by_id.get(id)

    def get_by_index(self, key: str) -> Collection[S]:
        """The subscribers indexed under ``key``, in registration order, as an immutable snapshot.

        Routing calls this for every activity and iterates the result while handlers may unregister (for
        instance, a slow consumer being dropped mid-fan-out), so the result must not change under iteration.
        A live dict view would raise on mutation, and copying on every call costs O(n) per activity for a
        bucket of 10,000 subscribers. Instead the snapshot is a tuple cached per bucket and only rebuilt after
        the bucket changes: with a stable population this is O(1), and under churn at most one O(n) copy per
        call, never more than the iteration the caller does anyway.

        Being a snapshot, it may include subscribers unregistered after it was taken; callers that care must
        check the subscriber's own state.
        """
        snapshot = self._snapshots.get(key)
        if snapshot is None:
            bucket = self._index.get(key)
            if bucket is None:
                return _EMPTY
            snapshot = self._snapshots[key] = tuple(bucket.values())
        return snapshot

    def get_all(self) -> list[S]:
        """Every registered subscriber, in registration order, as a new list (for shutdown and admin, not the
        hot path)."""
        return list(self._by_id.values())

    def count(self) -> int:
        """How many subscribers are registered."""
        return len(self._by_id)

    def count_by_index(self, key: str) -> int:
        """How many subscribers are indexed under ``key`` (0 for an unknown key)."""
        bucket = self._index.get(key)
        return 0 if bucket is None else len(bucket)

    def index_keys(self) -> list[str]:
        """The keys that currently have at least one subscriber."""
        return list(self._index)

    def __len__(self) -> int:
        return len(self._by_id)
