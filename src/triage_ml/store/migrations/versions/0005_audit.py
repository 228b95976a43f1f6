"""the audit trail (append-only: triggers refuse UPDATE and DELETE), the escalation map's version history and
reply drafts waiting for sign-off; decisions get their own decided_at (the event's, else its receipt)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)
REFUSAL = "the audit trail is append-only"


def upgrade() -> None:
    op.create_table(
        "audit",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("at", TZ, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("actor", sa.String(256)),
        sa.Column("role", sa.String(16)),
        sa.Column("subject", sa.String(256)),
        sa.Column("detail", sa.JSON(), nullable=False),
    )
    op.create_index("ix_audit_at", "audit", ["at"])
    op.create_index("ix_audit_kind_at", "audit", ["kind", "at"])
    op.create_index("ix_audit_actor_at", "audit", ["actor", "at"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"""CREATE FUNCTION audit_append_only() RETURNS trigger AS $$
                       BEGIN RAISE EXCEPTION '{REFUSAL}'; END $$ LANGUAGE plpgsql""")
        op.execute("CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON audit "
                   "FOR EACH ROW EXECUTE FUNCTION audit_append_only()")
    else:
        for event in ("UPDATE", "DELETE"):
            op.execute(f"CREATE TRIGGER audit_no_{event.lower()} BEFORE {event} ON audit "
                       f"BEGIN SELECT RAISE(ABORT, '{REFUSAL}'); END")
    op.create_table(
        "routing_versions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("previous_id", sa.Integer(), sa.ForeignKey("routing_versions.id"), unique=True),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(256)),
        sa.Column("note", sa.Text()),
        sa.Column("loaded_at", TZ, nullable=False),
    )
    op.create_table(
        "drafts",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(256), nullable=False, unique=True),
        sa.Column("message_id", sa.String(256), sa.ForeignKey("messages.id"), nullable=False),
        sa.Column("agent", sa.String(256), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("payload_hash", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("approval", sa.JSON(), nullable=False),
        sa.Column("submitted_at", TZ, nullable=False),
        sa.Column("decided_at", TZ),
        sa.Column("decided_by", sa.String(256)),
        sa.Column("note", sa.Text()),
    )
    op.create_index("ix_drafts_state", "drafts", ["state", "id"])
    op.create_index("ix_drafts_message_id", "drafts", ["message_id"])
    op.create_index("ix_drafts_agent", "drafts", ["agent"])
    op.add_column("decisions", sa.Column("decided_at", TZ))
    op.create_index("ix_decisions_decided_at", "decisions", ["decided_at"])
    _backfill_decided_at()


def _backfill_decided_at() -> None:
    """Decisions stored before this revision: decided_at from the event when it gave one, else its receipt."""
    from datetime import UTC, datetime

    conn = op.get_bind()
    decisions = sa.table("decisions", sa.column("id", sa.Integer), sa.column("payload", sa.JSON),
                         sa.column("received_at", TZ), sa.column("decided_at", TZ))
    for row in conn.execute(sa.select(decisions.c.id, decisions.c.payload, decisions.c.received_at)).all():
        given = (row.payload or {}).get("decided_at")
        when = datetime.fromisoformat(given) if given else row.received_at
        if isinstance(when, str):  # SQLite hands timestamps back as text
            when = datetime.fromisoformat(when)
        when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
        conn.execute(decisions.update().where(decisions.c.id == row.id).values(decided_at=when))


def downgrade() -> None:
    op.drop_index("ix_decisions_decided_at", "decisions")
    with op.batch_alter_table("decisions") as batch:
        batch.drop_column("decided_at")
    op.drop_table("drafts")
    op.drop_table("routing_versions")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER audit_append_only ON audit")
        op.execute("DROP FUNCTION audit_append_only()")
    op.drop_table("audit")
