"""The typed shapes of what the streams send: one definition for the server and every Python client.

These models describe the wire format of the contract (``docs/api.md``, "Streams"): a
``StreamMessage`` per change, the ``offset`` frame that ends catch-up, an RFC 9457 ``Problem`` (the body of
every error response and of an ``event: error`` frame), and a JSON-mode page. They live in the bottom layer
of the package, next to the SSE parser, and import nothing else from ``syncstream``: a client must be able
to use them without pulling in the server (its database, its bus, its web framework).

Field names are snake_case in Python and camelCase on the wire (``activity_id`` ↔ ``activityId``); both
spellings are accepted on input, and :meth:`WireModel.to_wire` writes the wire spelling. Unknown fields are
ignored rather than refused, because the contract may be *extended* (never renamed) and a client built
today must keep reading tomorrow's server.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_serializer
from pydantic.alias_generators import to_camel

__all__ = [
    "Action",
    "JsonPage",
    "OffsetFrame",
    "Problem",
    "StreamMessage",
    "TxInfo",
    "WireModel",
    "format_time",
]

#: What happened to the entity.
Action = Literal["create", "update", "delete"]

#: Activity IDs are decimal integers encoded as strings (the contract: "a client compares them as integers").
_ACTIVITY_ID_PATTERN = r"^[0-9]+$"


def format_time(value: datetime) -> str:
    """``2026-11-27T19:00:00.000Z``: the contract's one time format (UTC, milliseconds)."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return f"{value:%Y-%m-%dT%H:%M:%S}.{value.microsecond // 1000:03d}Z"


class WireModel(BaseModel):
    """Base of the wire models: camelCase aliases, immutable, tolerant of fields added later."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        frozen=True,
        extra="ignore",
    )

    def to_wire(self) -> dict[str, Any]:
        """The JSON-ready dict with the contract's camelCase names (what the server sends)."""
        return self.model_dump(mode="json", by_alias=True)

    def to_wire_json(self) -> str:
        """One line of JSON with the contract's camelCase names."""
        return self.model_dump_json(by_alias=True)


class TxInfo(WireModel):
    """The optional ``tx`` of a mutation, echoed in its stream message so a client recognises its own
    writes (``source_id``) and which edit caused them (``transaction_id``, ``changed_field``)."""

    transaction_id: str
    source_id: str
    changed_field: str | None = None


class StreamMessage(WireModel):
    """One change, as delivered in catch-up, in JSON mode and live (the same JSON everywhere).

    ``entity_type`` is a plain ``str`` rather than a closed set because the org stream carries "any future
    org-scoped entity types": a client must not fail on a type it does not know yet, only skip it.
    ``data`` is the entity right after the change (for a delete, right before it).
    """

    activity_id: str = Field(pattern=_ACTIVITY_ID_PATTERN)
    action: Action
    entity_type: str
    entity_id: str
    organization_id: str | None = None
    project_id: str | None = None
    changed_keys: list[str] | None = None
    created_at: datetime
    tx: TxInfo | None = None
    data: dict[str, Any] | None = None

    @property
    def activity_id_int(self) -> int:
        """The activity ID as an integer: the only correct way to compare two cursors
        (as strings, ``"9" > "10"``)."""
        return int(self.activity_id)

    @field_serializer("created_at")
    def _serialize_created_at(self, value: datetime) -> str:
        return format_time(value)


class OffsetFrame(WireModel):
    """The ``event: offset`` frame: catch-up is complete and ``cursor`` is where the stream stands (the last
    activity ID sent, or the resolved offset when nothing was sent; ``None`` for an empty history)."""

    cursor: str | None = Field(default=None, pattern=_ACTIVITY_ID_PATTERN)


class Problem(WireModel):
    """An RFC 9457 problem: the body of every error response and of every ``event: error`` frame.

    ``type`` is the contract's snake_case code (``must_refetch``, ``forbidden``, ``slow_consumer``, …).
    Extra members (a validation error's ``errors`` list, say) are kept, in ``model_extra``, because they are
    part of the problem a caller may want to report.
    """

    model_config = ConfigDict(extra="allow")

    type: str
    title: str = ""
    status: int | None = None
    detail: str = ""

    def __str__(self) -> str:
        status = f"{self.status} " if self.status is not None else ""
        detail = f": {self.detail}" if self.detail else ""
        return f"{status}{self.type}{detail}"


class JsonPage(WireModel):
    """A JSON-mode page of a stream: pass ``cursor`` back as ``offset`` until ``has_more`` is false."""

    activities: list[StreamMessage]
    cursor: str | None = Field(default=None, pattern=_ACTIVITY_ID_PATTERN)
    has_more: bool
