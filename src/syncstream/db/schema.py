"""The tables. Declarative models for the REST side; the activity log is read with Core.

The activity log keeps the changed entity as JSON *text* (``data``, ``tx``,
``changed_keys``): the stream embeds those bytes verbatim, so an activity serialises to
the same bytes in catch-up, JSON mode and live delivery, and no reader re-encodes them.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from syncstream.db.types import UTCDateTime

# SQLite only auto-assigns INTEGER PRIMARY KEY; PostgreSQL wants BIGINT for a log.
ActivityIdType = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16), default="user")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Session(Base):
    """A sign-in. Only the SHA-256 of the token is stored: a leaked table opens nothing."""

    __tablename__ = "sessions"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: Moved forward at most once a minute per process (auth/activity.py): the idle
    #: lifetime runs from here.
    last_used_at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: What signed in, for the user's list of their sessions (``User-Agent``, truncated).
    user_agent: Mapped[str | None] = mapped_column(String(200))
    address: Mapped[str | None] = mapped_column(String(64))


class Organization(Base):
    __tablename__ = "organizations"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(50), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Project(Base):
    __tablename__ = "projects"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    organization_id: Mapped[str] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Membership(Base):
    __tablename__ = "memberships"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    organization_id: Mapped[str] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    project_id: Mapped[str | None] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Attachment(Base):
    __tablename__ = "attachments"
    #: The list's order within an organization (modules/paging.py).
    __table_args__ = (Index("ix_attachments_org_list", "organization_id", "created_at", "id"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    organization_id: Mapped[str] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    project_id: Mapped[str | None] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(500))
    url: Mapped[str | None] = mapped_column(Text)
    content_type: Mapped[str | None] = mapped_column(String(200))
    size: Mapped[int | None] = mapped_column(BigInteger)
    created_by: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Page(Base):
    __tablename__ = "pages"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    title: Mapped[str] = mapped_column(String(500))
    content: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Activity(Base):
    """One row per change, written in the change's own transaction.

    ``id`` is the stream cursor. Besides the streamed entity types the log also carries
    internal events (membership changes, organization deletion, sign-out) so that every
    server process applies them in the same order as the activities around them.
    """

    __tablename__ = "activities"
    __table_args__ = (
        Index("ix_activities_org_id", "organization_id", "id"),
        Index("ix_activities_entity_type_id", "entity_type", "id"),
        {"sqlite_autoincrement": True},
    )
    id: Mapped[int] = mapped_column(ActivityIdType, primary_key=True, autoincrement=True)
    type: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(16))
    entity_type: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[str] = mapped_column(String(64))
    organization_id: Mapped[str | None] = mapped_column(String(32))
    project_id: Mapped[str | None] = mapped_column(String(32))
    user_id: Mapped[str | None] = mapped_column(String(32))
    changed_keys: Mapped[str | None] = mapped_column(Text)
    tx: Mapped[str | None] = mapped_column(Text)
    data: Mapped[str | None] = mapped_column(Text)
    #: ``user:org:type:transactionId`` on creates that carried a tx: makes replay idempotent
    #: even when two identical creates race (the second insert fails on this key).
    idempotency_key: Mapped[str | None] = mapped_column(String(400), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class LogState(Base):
    """Small key/value facts about the log, e.g. how far it was pruned."""

    __tablename__ = "log_state"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger)


class CaptureWriter(Base):
    """Never committed: one row inserted and deleted inside each of syncstream's own write
    transactions on SQLite while change capture is on, which tells the capture triggers
    that syncstream records this transaction itself (docs/capture.md)."""

    __tablename__ = "syncstream_capture_writer"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
