"""reviews in Label Studio: projects, the review queue, leads' annotations, a dispute's review task

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "review_projects",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("base_url", sa.String(1024), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.UniqueConstraint("kind", "base_url", name="uq_review_project"),
    )
    with op.batch_alter_table("disputes") as batch:
        batch.add_column(sa.Column("review_project", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("review_task_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("pushed_at", TZ, nullable=True))
        batch.create_foreign_key("fk_disputes_review_project", "review_projects", ["review_project"], ["id"])
    op.create_table(
        "review_queue",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("message_id", sa.String(256), sa.ForeignKey("messages.id"), nullable=False),
        sa.Column("review_project", sa.Integer(), sa.ForeignKey("review_projects.id"), nullable=False),
        sa.Column("review_task_id", sa.Integer(), nullable=False),
        sa.Column("why", sa.JSON(), nullable=False),
        sa.Column("model_version", sa.String(64)),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
    )
    op.create_index("ix_review_queue_message_id", "review_queue", ["message_id"])
    op.create_table(
        "review_annotations",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("review_project", sa.Integer(), sa.ForeignKey("review_projects.id"), nullable=False),
        sa.Column("review_task_id", sa.Integer(), nullable=False),
        sa.Column("annotation_id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.String(256), sa.ForeignKey("messages.id"), nullable=False),
        sa.Column("dispute_id", sa.Integer(), sa.ForeignKey("disputes.id")),
        sa.Column("lead", sa.String(256), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("reason", sa.String(32)),
        sa.Column("note", sa.Text()),
        sa.Column("problem", sa.Text()),
        sa.Column("annotated_at", TZ),
        sa.Column("pulled_at", TZ, nullable=False),
        sa.UniqueConstraint("review_project", "annotation_id", name="uq_review_annotation"),
    )
    op.create_index("ix_review_annotations_message_id", "review_annotations", ["message_id"])


def downgrade() -> None:
    op.drop_table("review_annotations")
    op.drop_table("review_queue")
    with op.batch_alter_table("disputes") as batch:
        batch.drop_constraint("fk_disputes_review_project", type_="foreignkey")
        batch.drop_column("pushed_at")
        batch.drop_column("review_task_id")
        batch.drop_column("review_project")
    op.drop_table("review_projects")
