"""budget adjustments: maintenance windows from the catalogue and one-off ones from Slack

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "budget_adjustment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("origin", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("first_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("duration_s", sa.BigInteger(), nullable=False),
        sa.Column("rrule", sa.Text(), nullable=True),
        sa.Column("time_zone", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("slos", sa.Text(), nullable=False),
        sa.Column("services", sa.Text(), nullable=False),
        sa.Column("created_by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cancelled_by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("budget_adjustment", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_budget_adjustment_name"), ["name"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("budget_adjustment", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_budget_adjustment_name"))
    op.drop_table("budget_adjustment")
