"""Alembic environment: always handed a live connection by syncstream.db.migrate."""

from __future__ import annotations

from alembic import context

from syncstream.db.schema import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only reached when run as the alembic CLI
    raise RuntimeError("run migrations through `syncstream.db.migrate.upgrade`")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    transactional_ddl=True,
)
with context.begin_transaction():
    context.run_migrations()
