"""dispute reasons counted: a repeated reason is one entry with its count, at most 20 distinct per dispute

No table changes: each dispute's ``reasons`` (JSON) is rewritten in the compact form that
``triage_ml.labels.disputes.merge_reasons`` keeps from now on. Downgrading leaves the compact form (older
code reads it, and ignores ``count``).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

from triage_ml.labels.disputes import merge_reasons

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

DISPUTES = sa.table("disputes", sa.column("id", sa.Integer()), sa.column("reasons", sa.JSON()))


def upgrade() -> None:
    bind = op.get_bind()
    for dispute_id in bind.scalars(sa.select(DISPUTES.c.id).order_by(DISPUTES.c.id)).all():  # one at a time
        reasons = bind.scalar(sa.select(DISPUTES.c.reasons).where(DISPUTES.c.id == dispute_id))
        compact = merge_reasons([], reasons or [])
        if compact != reasons:
            bind.execute(DISPUTES.update().where(DISPUTES.c.id == dispute_id).values(reasons=compact))


def downgrade() -> None:
    pass
