"""Tests for the subscriber manager."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, consumes, invariant, rule

from syncstream.stream.manager import SubscriberManager


@dataclass(eq=False)
class Sub:
    """A mutable subscriber; eq=False so identity, not value, distinguishes two subscribers."""

    id: str
    index_key: str | None


@dataclass(frozen=True)
class FrozenSub:
    id: str
    index_key: str | None


def test_register_and_lookups() -> None:
    manager: SubscriberManager[Sub] = SubscriberManager()
    a, b, c = Sub("a", "org:1"), Sub("b", "org:1"), Sub("c", "org:2")
    for sub in (a, b, c):
        manager.register(sub)
    assert manager.get("a") is a
    assert manager.get("zzz") is None
    assert list(manager.get_by_index("org:1")) == [a, b]
    assert list(manager.get_by_index("org:2")) == [c]
    assert manager.count() == len(manager) == 3
    assert manager.count_by_index("org:1") == 2
    assert manager.count_by_index("org:9") == 0
    assert sorted(manager.index_keys()) == ["org:1", "org:2"]
    assert manager.get_all() == [a, b, c]


def test_frozen_subscribers_satisfy_the_protocol() -> None:
    manager: SubscriberManager[FrozenSub] = SubscriberManager()
    sub = FrozenSub("a", "public:page")
    manager.register(sub)
    assert list(manager.get_by_index("public:page")) == [sub]


def test_duplicate_id_is_rejected_and_changes_nothing() -> None:
    manager: SubscriberManager[Sub] = SubscriberManager()
    first = Sub("a", "org:1")
    manager.register(first)
    with pytest.raises(ValueError, match="'a'"):
        manager.register(Sub("a", "org:2"))
    assert manager.get("a") is first
    assert manager.index_keys() == ["org:1"]
    assert manager.count() == 1


def test_unregister_by_id_and_by_object() -> None:
    manager: SubscriberManager[Sub] = SubscriberManager()
    a, b = Sub("a", "k"), Sub("b", "k")
    manager.register(a)
    manager.register(b)
    assert manager.unregister("a") is a
    assert manager.unregister(b) is b
    assert manager.count() == 0
    assert manager.get("a") is None


def test_unregister_is_idempotent() -> None:
    manager: SubscriberManager[Sub] = SubscriberManager()
    a = Sub("a", "k")
    manager.register(a)
    assert manager.unregister(a) is a
    assert manager.unregister(a) is None
    assert manager.unregister("a") is None
    assert manager.unregister("never") is None
    assert manager.count() == 0


def test_stale_object_does_not_remove_a_newer_subscriber_with_the_same_id() -> None:
    manager: SubscriberManager[Sub] = SubscriberManager()
    old, new = Sub("a", "k"), Sub("a", "k")
    manager.register(old)
    manager.unregister(old)
    manager.register(new)
    assert manager.unregister(old) is None
    assert manager.get("a") is new
    assert list(manager.get_by_index("k")) == [new]


def test_empty_buckets_are_deleted() -> None:
    manager: SubscriberManager[Sub] = SubscriberManager()
    a, b = Sub("a", "org:1"), Sub("b", "org:2")
    manager.register(a)
    manager.register(b)
    manager.unregister(a)
    assert manager.index_keys() == ["org:2"]
    manager.unregister("b")
    assert manager.index_keys() == []


def test_unknown_key_lookup_creates_nothing() -> None:
    manager: SubscriberManager[Sub] = SubscriberManager()
    assert list(manager.get_by_index("nope")) == []
    assert manager.count_by_index("nope") == 0
    assert manager.index_keys() == []


def test_none_key_is_reachable_by_id_only() -> None:
    manager: SubscriberManager[Sub] = SubscriberManager()
    sub = Sub("a", None)
    manager.register(sub)
    assert manager.get("a") is sub
    assert manager.index_keys() == []
    assert manager.count() == 1
    assert manager.unregister("a") is sub
    assert manager.count() == 0


def test_index_key_is_read_once_at_registration() -> None:
    manager: SubscriberManager[Sub] = SubscriberManager()
    sub = Sub("a", "org:1")
    manager.register(sub)
    sub.index_key = "org:2"
    assert list(manager.get_by_index("org:1")) == [sub]
    assert manager.unregister(sub) is sub
    assert manager.index_keys() == []


def test_snapshot_is_safe_to_iterate_while_unregistering() -> None:
    manager: SubscriberManager[Sub] = SubscriberManager()
    subs = [Sub(str(i), "k") for i in range(10)]
    for sub in subs:
        manager.register(sub)
    seen = []
    for sub in manager.get_by_index("k"):
        seen.append(sub)
        manager.unregister(sub)
        manager.register(Sub(f"new-{sub.id}", "k"))
    assert seen == subs
    assert [s.id for s in manager.get_by_index("k")] == [f"new-{i}" for i in range(10)]


def test_snapshot_does_not_change_after_it_was_taken() -> None:
    manager: SubscriberManager[Sub] = SubscriberManager()
    a, b = Sub("a", "k"), Sub("b", "k")
    manager.register(a)
    snapshot = manager.get_by_index("k")
    manager.register(b)
    manager.unregister(a)
    assert list(snapshot) == [a]
    assert list(manager.get_by_index("k")) == [b]


def test_snapshot_is_reused_until_the_bucket_changes() -> None:
    manager: SubscriberManager[Sub] = SubscriberManager()
    manager.register(Sub("a", "k"))
    manager.register(Sub("x", "other"))
    first = manager.get_by_index("k")
    assert manager.get_by_index("k") is first  # no copy per routing call
    manager.register(Sub("y", "other"))  # another bucket's change does not invalidate this one
    assert manager.get_by_index("k") is first
    manager.register(Sub("b", "k"))
    second = manager.get_by_index("k")
    assert second is not first
    assert len(second) == 2
    manager.unregister("b")
    assert [s.id for s in manager.get_by_index("k")] == ["a"]


def test_bucket_recreated_after_emptying_starts_fresh() -> None:
    manager: SubscriberManager[Sub] = SubscriberManager()
    a, b = Sub("a", "k"), Sub("b", "k")
    manager.register(a)
    assert list(manager.get_by_index("k")) == [a]
    manager.unregister(a)
    manager.register(b)
    assert list(manager.get_by_index("k")) == [b]


class ManagerMachine(RuleBasedStateMachine):
    """Drives the manager with arbitrary register/unregister sequences and checks it against a plain model."""

    def __init__(self) -> None:
        super().__init__()
        self.manager: SubscriberManager[Sub] = SubscriberManager()
        self.model: dict[str, Sub] = {}
        self.retired: list[Sub] = []

    registered = Bundle("registered")

    ids = st.sampled_from([f"s{i}" for i in range(8)])
    keys = st.sampled_from(["org:1", "org:2", "public:page", None])

    @rule(target=registered, sub_id=ids, key=keys)
    def register(self, sub_id: str, key: str | None) -> Sub:
        sub = Sub(sub_id, key)
        if sub_id in self.model:
            with pytest.raises(ValueError, match="already registered"):
                self.manager.register(sub)
        else:
            self.manager.register(sub)
            self.model[sub_id] = sub
        return sub

    @rule(sub=consumes(registered))
    def unregister_object(self, sub: Sub) -> None:
        expected = sub if self.model.get(sub.id) is sub else None
        assert self.manager.unregister(sub) is expected
        if expected is not None:
            del self.model[sub.id]
            self.retired.append(sub)

    @rule(sub_id=ids)
    def unregister_id(self, sub_id: str) -> None:
        expected = self.model.pop(sub_id, None)
        assert self.manager.unregister(sub_id) is expected
        if expected is not None:
            self.retired.append(expected)

    @rule(data=st.data())
    def unregister_retired_object(self, data: st.DataObject) -> None:
        if not self.retired:
            return
        stale = data.draw(st.sampled_from(self.retired))
        current = self.model.get(stale.id)
        assert self.manager.unregister(stale) is None
        assert self.manager.get(stale.id) is current

    @rule(key=keys.filter(lambda k: k is not None), data=st.data())
    def iterate_bucket_while_unregistering(self, key: str, data: st.DataObject) -> None:
        before = [s for s in self.model.values() if s.index_key == key]
        seen = []
        for sub in self.manager.get_by_index(key):
            seen.append(sub)
            if data.draw(st.booleans()):
                assert self.manager.unregister(sub.id) is sub
                del self.model[sub.id]
                self.retired.append(sub)
        assert seen == before

    @invariant()
    def agrees_with_model(self) -> None:
        manager, model = self.manager, self.model
        assert manager.count() == len(manager) == len(model)
        assert manager.get_all() == list(model.values())
        for sub_id in ["s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7"]:
            assert manager.get(sub_id) is model.get(sub_id)
        expected_index: dict[str, list[Sub]] = {}
        for sub in model.values():
            if sub.index_key is not None:
                expected_index.setdefault(sub.index_key, []).append(sub)
        # No empty bucket is left behind, and every bucket holds exactly its subscribers, in order.
        assert sorted(manager.index_keys()) == sorted(expected_index)
        for key in ["org:1", "org:2", "public:page"]:
            expected = expected_index.get(key, [])
            assert list(manager.get_by_index(key)) == expected
            assert manager.count_by_index(key) == len(expected)


TestManagerAgainstModel = ManagerMachine.TestCase
