"""breach refunds: resolved breaches marked false positives, their span left out of the budget

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "breach_refund",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("breach_id", sa.Integer(), nullable=False),
        sa.Column("excluded_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("excluded_to", sa.DateTime(timezone=True), nullable=False),
        sa.Column("by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("why", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("undone_by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("undone_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["breach_id"], ["breach.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("breach_refund", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_breach_refund_breach_id"), ["breach_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("breach_refund", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_breach_refund_breach_id"))
    op.drop_table("breach_refund")
