"""The label store's tables (SQLAlchemy 2). Alembic migrations in ``migrations/`` create exactly these.

Nothing here is ever deleted or updated in place, except: a label's ``superseded_by`` (set when the same
author, or a lead, labels the head again), a dispute's state, resolution and review task, and a review
annotation that its lead edited in Label Studio. Every timestamp is ``UTCDateTime``: stored in UTC, read back
in UTC with its offset.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from triage_ml.messages import MAX_ID_CHARS as ID
from triage_ml.times import as_utc


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and read back in UTC with its offset, on every database. SQLite keeps no
    offset (it would store 10:00+05:00 as 10:00), and PostgreSQL answers in the session's time zone."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else as_utc(value)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else as_utc(value)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, list[Any]: JSON}


class MessageRow(Base):
    """A message as first seen by the store (scored with an id, or sent with a decision)."""

    __tablename__ = "messages"
    # the context lookups (context.py): an author's recent messages, a conversation's messages
    __table_args__ = (Index("ix_messages_author_created", "author", "created_at"),
                      Index("ix_messages_conversation", "conversation_id"))
    id: Mapped[str] = mapped_column(String(ID), primary_key=True)  # the client's message_id
    text: Mapped[str] = mapped_column(Text)
    channel: Mapped[str | None] = mapped_column(String(ID))
    brand: Mapped[str | None] = mapped_column(String(ID))
    author: Mapped[str | None] = mapped_column(String(ID))
    conversation_id: Mapped[str | None] = mapped_column(String(ID))
    is_private: Mapped[bool | None] = mapped_column(Boolean)
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PredictionRow(Base):
    """What a model version said about a message: the scoring response's result, recorded once."""

    __tablename__ = "predictions"
    __table_args__ = (UniqueConstraint("message_id", "model_name", "model_version", name="uq_prediction"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(ForeignKey("messages.id"), index=True)
    model_name: Mapped[str] = mapped_column(String(ID))
    model_version: Mapped[str] = mapped_column(String(64))
    result: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class DecisionRow(Base):
    """An agent's decision as received (immutable); ``event_id`` is the client's idempotency key."""

    __tablename__ = "decisions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(ID), unique=True)
    message_id: Mapped[str] = mapped_column(ForeignKey("messages.id"), index=True)
    agent: Mapped[str] = mapped_column(String(ID))
    action: Mapped[str] = mapped_column(String(32))
    model_version: Mapped[str | None] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)  # the event exactly as sent
    payload_hash: Mapped[str] = mapped_column(String(64))
    response: Mapped[dict[str, Any]] = mapped_column(JSON)  # what the API answered; replays get it again
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # when the agent decided: the event's own decided_at, else its receipt (reports replay history as it was)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)


class LabelRow(Base):
    """One head's label for one message, with its provenance."""

    __tablename__ = "labels"
    __table_args__ = (Index("ix_labels_message_head", "message_id", "head"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(ForeignKey("messages.id"))
    head: Mapped[str] = mapped_column(String(16))  # actionable | priority_tier | crisis
    value: Mapped[int] = mapped_column(Integer)  # 0/1 for actionable and crisis; 1/2 for the tier
    source: Mapped[str] = mapped_column(String(16))  # seed | import | agent | lead | model
    author: Mapped[str | None] = mapped_column(String(ID))
    decision_id: Mapped[int | None] = mapped_column(ForeignKey("decisions.id"))
    dispute_id: Mapped[int | None] = mapped_column(ForeignKey("disputes.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    superseded_by: Mapped[int | None] = mapped_column(ForeignKey("labels.id"))


class DisputeRow(Base):
    """A message whose label is in doubt. At most one open dispute per message; new reasons join it."""

    __tablename__ = "disputes"
    __table_args__ = (Index("uq_open_dispute", "message_id", unique=True, sqlite_where=text("state = 'open'"),
                            postgresql_where=text("state = 'open'")),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(ForeignKey("messages.id"), index=True)
    state: Mapped[str] = mapped_column(String(16), default="open")  # open | resolved
    reasons: Mapped[list[Any]] = mapped_column(JSON)  # [{"rule", "detail", "decision_id", "by", "at"}]
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_by: Mapped[str | None] = mapped_column(String(ID))
    resolution: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # The Label Studio task leads review it in: set only once Label Studio confirmed the task exists.
    review_project: Mapped[int | None] = mapped_column(ForeignKey("review_projects.id"))
    review_task_id: Mapped[int | None] = mapped_column(Integer)
    pushed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ReviewProjectRow(Base):
    """A Label Studio project this store created: ``kind`` disputes or queue, on the server at ``base_url``."""

    __tablename__ = "review_projects"
    __table_args__ = (UniqueConstraint("kind", "base_url", name="uq_review_project"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))
    base_url: Mapped[str] = mapped_column(String(1024))
    project_id: Mapped[int] = mapped_column(Integer)  # Label Studio's id
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ReviewQueueRow(Base):
    """A message the active-learning step sent to the review queue, with why it was chosen."""

    __tablename__ = "review_queue"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(ForeignKey("messages.id"), index=True)
    review_project: Mapped[int] = mapped_column(ForeignKey("review_projects.id"))
    review_task_id: Mapped[int] = mapped_column(Integer)
    why: Mapped[list[Any]] = mapped_column(JSON)  # [{"rule", "head", "detail", "score"}]
    model_version: Mapped[str | None] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16), default="open")  # open | answered
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ReviewAnnotationRow(Base):
    """A lead's annotation as read from Label Studio, valid or not (``problem`` says why not)."""

    __tablename__ = "review_annotations"
    __table_args__ = (UniqueConstraint("review_project", "annotation_id", name="uq_review_annotation"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    review_project: Mapped[int] = mapped_column(ForeignKey("review_projects.id"))
    review_task_id: Mapped[int] = mapped_column(Integer)
    annotation_id: Mapped[int] = mapped_column(Integer)  # Label Studio's id
    message_id: Mapped[str] = mapped_column(ForeignKey("messages.id"), index=True)
    dispute_id: Mapped[int | None] = mapped_column(ForeignKey("disputes.id"))
    lead: Mapped[str] = mapped_column(String(ID))
    labels: Mapped[dict[str, Any]] = mapped_column(JSON)  # {head: value}; empty when there is a problem
    reason: Mapped[str | None] = mapped_column(String(32))
    note: Mapped[str | None] = mapped_column(Text)
    problem: Mapped[str | None] = mapped_column(Text)
    annotated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # Label Studio's updated_at
    pulled_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ApiKeyRow(Base):
    """A person's API key (``store/keys.py``): only its SHA-256 is kept. A name has at most one active key;
    revoking sets ``revoked_at`` and keeps the row."""

    __tablename__ = "api_keys"
    __table_args__ = (Index("uq_active_key_name", "name", unique=True, sqlite_where=text("revoked_at IS NULL"),
                            postgresql_where=text("revoked_at IS NULL")),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(ID))  # the person: decisions and labels sent with the key carry it
    role: Mapped[str] = mapped_column(String(16))  # one of settings.ROLES
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)  # hex SHA-256 of the key
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AuditRow(Base):
    """One entry of the audit trail (``store/audit.py``): append-only. The application never updates or deletes
    a row, and the database refuses to (a trigger on SQLite and PostgreSQL)."""

    __tablename__ = "audit"
    __table_args__ = (Index("ix_audit_kind_at", "kind", "at"), Index("ix_audit_actor_at", "actor", "at"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    kind: Mapped[str] = mapped_column(String(32))  # one of audit.KINDS
    actor: Mapped[str | None] = mapped_column(String(ID))  # the named agent or lead; None: a service account
    role: Mapped[str | None] = mapped_column(String(16))  # the key's role (or "cli", "label-studio", "service")
    subject: Mapped[str | None] = mapped_column(String(ID))  # what it is about, e.g. message:m-1, dispute:3
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)


class RoutingVersionRow(Base):
    """An escalation map the service loaded (from its file or through the API): its text, hash, who and when.
    A row is added only when the map differs from the latest row (``previous_id`` is unique, so two workers
    that load the same change record it once)."""

    __tablename__ = "routing_versions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    previous_id: Mapped[int | None] = mapped_column(ForeignKey("routing_versions.id"), unique=True)
    content_hash: Mapped[str] = mapped_column(String(64))
    content: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(16))  # file | api
    actor: Mapped[str | None] = mapped_column(String(ID))
    note: Mapped[str | None] = mapped_column(Text)
    loaded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class DraftRow(Base):
    """An agent's reply to a message, waiting for (or given) sign-off. ``event_id`` is the client's idempotency
    key. Only ``state`` and the decision fields change, once: pending -> approved | rejected."""

    __tablename__ = "drafts"
    __table_args__ = (Index("ix_drafts_state", "state", "id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(ID), unique=True)
    message_id: Mapped[str] = mapped_column(ForeignKey("messages.id"), index=True)
    agent: Mapped[str] = mapped_column(String(ID), index=True)
    text: Mapped[str] = mapped_column(Text)
    payload_hash: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))  # pending | approved | rejected
    approval: Mapped[dict[str, Any]] = mapped_column(JSON)  # SignOff.to_dict() when it was submitted
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decided_by: Mapped[str | None] = mapped_column(String(ID))
    note: Mapped[str | None] = mapped_column(Text)
