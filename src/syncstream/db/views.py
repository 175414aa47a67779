"""Immutable views of rows that are passed between layers and kept in caches."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class OrgInfo:
    id: str
    name: str
    slug: str
    created_at: datetime
