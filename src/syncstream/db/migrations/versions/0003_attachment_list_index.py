"""attachment list index: an organization's attachments in list order

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07

The attachment list pages by ``(created_at, id)`` within an organization: with this index
each page is one range scan of the rows it returns, however deep into the list it is.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("attachments", schema=None) as batch_op:
        batch_op.create_index(
            "ix_attachments_org_list", ["organization_id", "created_at", "id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("attachments", schema=None) as batch_op:
        batch_op.drop_index("ix_attachments_org_list")
