"""capture writer marker: the row that tells SQLite's capture triggers a write is syncstream's own

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07

With change capture on (``SYNCSTREAM_CAPTURE``, docs/capture.md), syncstream's own write
connections insert one row here right after ``BEGIN IMMEDIATE`` and delete it just before
``COMMIT``: it is never committed, so only the transaction that wrote it sees it, and the
triggers skip what syncstream records itself. SQLite has no session variables to say so.
The table exists on PostgreSQL too (empty, unused there: a transaction-local setting does
the job) so that both schemas stay the same.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table("syncstream_capture_writer", sa.Column("id", sa.Integer(), primary_key=True))


def downgrade() -> None:
    op.drop_table("syncstream_capture_writer")
