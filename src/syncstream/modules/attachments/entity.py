"""The attachment entity type, declared through the public library API."""

from __future__ import annotations

from syncstream import entity_type, in_project
from syncstream.db.schema import Attachment
from syncstream.modules.attachments.schemas import attachment_json

#: Routes record explicitly (Core inserts on the hot path), so it is added with auto=False.
ATTACHMENT = entity_type("attachment", Attachment, scope=in_project(), shape=attachment_json)
