"""Attachment bodies and their JSON shape."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from syncstream.db.types import iso_ms
from syncstream.modules.common import CamelModel, TxIn

#: Request field name → model attribute, for the fields a PATCH may change.
EDITABLE = {
    "name": "name",
    "url": "url",
    "contentType": "content_type",
    "size": "size",
    "projectId": "project_id",
}


class AttachmentIn(CamelModel):
    name: str = Field(min_length=1, max_length=500)
    url: str | None = Field(default=None, max_length=4096)
    content_type: str | None = Field(default=None, max_length=200)
    size: int | None = Field(default=None, ge=0, le=2**62)
    project_id: str | None = Field(default=None, max_length=64)
    tx: TxIn | None = None


class AttachmentPatch(CamelModel):
    name: str | None = Field(default=None, min_length=1, max_length=500)
    url: str | None = Field(default=None, max_length=4096)
    content_type: str | None = Field(default=None, max_length=200)
    size: int | None = Field(default=None, ge=0, le=2**62)
    project_id: str | None = Field(default=None, max_length=64)
    tx: TxIn | None = None


class AttachmentDelete(CamelModel):
    """A DELETE may carry a body too, only for ``tx``: a delete is a mutation like any
    other, and the client that made it wants to recognise it in the stream."""

    tx: TxIn | None = None


def attachment_json(a: Any) -> dict[str, Any]:
    """The API shape, also the ``data`` snapshot in the activity log."""
    return {
        "id": a.id,
        "organizationId": a.organization_id,
        "projectId": a.project_id,
        "name": a.name,
        "url": a.url,
        "contentType": a.content_type,
        "size": a.size,
        "createdBy": a.created_by,
        "createdAt": iso_ms(a.created_at),
        "updatedAt": iso_ms(a.updated_at),
    }
