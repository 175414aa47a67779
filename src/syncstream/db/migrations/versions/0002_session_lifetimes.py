"""session lifetimes: when each session was last used, and from where it signed in

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-07

Existing sessions count as last used when they were made: the idle lifetime runs from
their sign-in, which may end some old sessions at once (as sessions without any lifetime
should).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("user_agent", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("address", sa.String(length=64), nullable=True))
    op.execute("UPDATE sessions SET last_used_at = created_at")
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.alter_column("last_used_at", existing_type=sa.DateTime(timezone=True), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.drop_column("address")
        batch_op.drop_column("user_agent")
        batch_op.drop_column("last_used_at")
