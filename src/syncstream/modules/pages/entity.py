"""The page entity type, declared through the public library API."""

from __future__ import annotations

from typing import Any

from syncstream import entity_type, public
from syncstream.db.schema import Page
from syncstream.db.types import iso_ms


def page_json(p: Any) -> dict[str, Any]:
    return {
        "id": p.id,
        "title": p.title,
        "content": p.content,
        "createdBy": p.created_by,
        "createdAt": iso_ms(p.created_at),
        "updatedAt": iso_ms(p.updated_at),
    }


#: Public: its activities never carry ``tx`` (the public stream must not reveal who wrote).
PAGE = entity_type("page", Page, scope=public(), shape=page_json)
