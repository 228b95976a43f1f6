"""label store: messages, predictions, decisions, labels, disputes

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "messages",
        sa.Column("id", sa.String(256), primary_key=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("channel", sa.String(256)),
        sa.Column("brand", sa.String(256)),
        sa.Column("author", sa.String(256)),
        sa.Column("conversation_id", sa.String(256)),
        sa.Column("is_private", sa.Boolean()),
        sa.Column("created_at", TZ),
        sa.Column("first_seen", TZ, nullable=False),
    )
    op.create_table(
        "predictions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("message_id", sa.String(256), sa.ForeignKey("messages.id"), nullable=False),
        sa.Column("model_name", sa.String(256), nullable=False),
        sa.Column("model_version", sa.String(64), nullable=False),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.UniqueConstraint("message_id", "model_name", "model_version", name="uq_prediction"),
    )
    op.create_index("ix_predictions_message_id", "predictions", ["message_id"])
    op.create_table(
        "decisions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(256), nullable=False, unique=True),
        sa.Column("message_id", sa.String(256), sa.ForeignKey("messages.id"), nullable=False),
        sa.Column("agent", sa.String(256), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("model_version", sa.String(64)),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("payload_hash", sa.String(64), nullable=False),
        sa.Column("response", sa.JSON(), nullable=False),
        sa.Column("received_at", TZ, nullable=False),
    )
    op.create_index("ix_decisions_message_id", "decisions", ["message_id"])
    op.create_table(
        "disputes",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("message_id", sa.String(256), sa.ForeignKey("messages.id"), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("opened_at", TZ, nullable=False),
        sa.Column("resolved_at", TZ),
        sa.Column("resolved_by", sa.String(256)),
        sa.Column("resolution", sa.JSON()),
    )
    op.create_index("ix_disputes_message_id", "disputes", ["message_id"])
    op.create_index("uq_open_dispute", "disputes", ["message_id"], unique=True,
                    sqlite_where=sa.text("state = 'open'"), postgresql_where=sa.text("state = 'open'"))
    op.create_table(
        "labels",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("message_id", sa.String(256), sa.ForeignKey("messages.id"), nullable=False),
        sa.Column("head", sa.String(16), nullable=False),
        sa.Column("value", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("author", sa.String(256)),
        sa.Column("decision_id", sa.Integer(), sa.ForeignKey("decisions.id")),
        sa.Column("dispute_id", sa.Integer(), sa.ForeignKey("disputes.id")),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("superseded_by", sa.Integer(), sa.ForeignKey("labels.id")),
    )
    op.create_index("ix_labels_message_head", "labels", ["message_id", "head"])


def downgrade() -> None:
    op.drop_table("labels")
    op.drop_index("uq_open_dispute", "disputes")
    op.drop_table("disputes")
    op.drop_table("decisions")
    op.drop_table("predictions")
    op.drop_table("messages")
