"""Stream parameters and cursor rules, pure: no I/O, so every edge is a unit test.

A cursor is an activity ID. The server can continue from it only if it lies inside the
history it still has: not beyond the newest activity (that cursor came from another
history) and not before what an operator pruned (there would be a silent gap).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Literal

MAX_ACTIVITY_ID = 2**63 - 1
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


class InvalidParameter(ValueError):
    def __init__(self, parameter: str, detail: str) -> None:
        super().__init__(detail)
        self.parameter = parameter
        self.detail = detail


class CursorOutOfRange(ValueError):
    """The client's cursor cannot be continued from: it must drop its cache and refetch."""


@dataclass(frozen=True, slots=True)
class Offset:
    """``kind`` "all" (``-1``), "now", or "after" an activity ``id``."""

    kind: Literal["all", "now", "after"]
    id: int = 0


def _parse_id(raw: str, parameter: str) -> int:
    if not raw.isascii() or not raw.isdigit():
        raise InvalidParameter(
            parameter, f"{parameter} must be -1, now or a non-negative integer, got {raw!r}"
        )
    # Any digit string is a valid cursor; one beyond any ID we could issue is simply
    # "newer than the newest", which is a must-refetch, not a malformed parameter.
    digits = raw.lstrip("0") or "0"
    if len(digits) > 19:  # also keeps int() away from huge inputs
        return MAX_ACTIVITY_ID + 1
    return min(int(digits), MAX_ACTIVITY_ID + 1)


def parse_offset(raw: str | None, last_event_id: str | None = None) -> Offset:
    """The effective offset: ``Last-Event-ID`` (what browsers send on reconnect) wins."""
    if last_event_id is not None and last_event_id.strip() != "":
        return Offset("after", _parse_id(last_event_id.strip(), "Last-Event-ID"))
    if raw is None or raw == "-1":
        return Offset("all")
    if raw == "now":
        return Offset("now")
    return Offset("after", _parse_id(raw, "offset"))


def parse_limit(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_LIMIT
    if not raw.isascii() or not raw.isdigit() or len(raw) > 4 or not 1 <= int(raw) <= MAX_LIMIT:
        raise InvalidParameter("limit", f"limit must be an integer from 1 to {MAX_LIMIT}, got {raw!r}")
    return int(raw)


def parse_live(raw: str | None) -> bool:
    if raw is None:
        return False
    if raw == "sse":
        return True
    raise InvalidParameter("live", f"live must be absent or 'sse', got {raw!r}")


def parse_entity_types(raw: str | None, known: Collection[str]) -> frozenset[str] | None:
    """``attachment,page`` → a set; None when absent (all types)."""
    if raw is None:
        return None
    names = [name.strip() for name in raw.split(",")]
    if not names or any(name == "" for name in names):
        raise InvalidParameter("entityTypes", "entityTypes must be a comma-separated list of entity types")
    unknown = sorted(set(names) - set(known))
    if unknown:
        raise InvalidParameter(
            "entityTypes",
            f"entityTypes has unknown entity type(s) {', '.join(map(repr, unknown))}; "
            f"known: {', '.join(sorted(known))}",
        )
    return frozenset(names)


@dataclass(frozen=True, slots=True)
class Resolved:
    """Where reading starts (``after``), what the ``offset`` frame reports if nothing is
    sent, and the newest activity committed when it was resolved (0 if not known):
    catch-up goes at least that far, so a client finds there what it wrote before."""

    after: int
    reported: int | None
    newest: int = 0


def resolve(offset: Offset, *, newest: int, pruned_through: int) -> Resolved:
    """Turn an offset into a starting point, or raise :class:`CursorOutOfRange`."""
    if offset.kind == "all":
        return Resolved(after=pruned_through, reported=None, newest=newest)
    if offset.kind == "now":
        return Resolved(after=newest, reported=newest or None, newest=newest)
    if offset.id > newest:
        raise CursorOutOfRange(
            f"offset {offset.id} is beyond the newest activity ({newest}); drop the cache and start from -1"
        )
    if offset.id < pruned_through:
        raise CursorOutOfRange(
            f"offset {offset.id} is older than the history kept (pruned through {pruned_through}); "
            "drop the cache and start from -1"
        )
    return Resolved(after=offset.id, reported=offset.id, newest=newest)
