"""budget readings: an SLO's budget at its first evaluation of each UTC day, for `slo-bot report`

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "budget_reading",
        sa.Column("slo_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("day_s", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("evaluated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("remaining_ratio", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(["slo_id"], ["slo.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("slo_id", "day_s"),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    op.drop_table("budget_reading")
