"""indexes for the context lookups: an author's recent messages, a conversation's messages

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_messages_author_created", "messages", ["author", "created_at"])
    op.create_index("ix_messages_conversation", "messages", ["conversation_id"])


def downgrade() -> None:
    op.drop_index("ix_messages_conversation", "messages")
    op.drop_index("ix_messages_author_created", "messages")
