"""grouped SLOs: a definition's group labels; members pointing at their definition, with their label
values and when they last had data

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("slo", schema=None) as batch_op:
        batch_op.add_column(sa.Column("group_by", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True))
        batch_op.add_column(sa.Column("group_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("group_key", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("last_data_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f("ix_slo_group_id"), ["group_id"], unique=False)
        batch_op.create_foreign_key("fk_slo_group_id_slo", "slo", ["group_id"], ["id"], ondelete="CASCADE")


def downgrade() -> None:
    with op.batch_alter_table("slo", schema=None) as batch_op:
        batch_op.drop_constraint("fk_slo_group_id_slo", type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_slo_group_id"))
        batch_op.drop_column("last_data_at")
        batch_op.drop_column("group_key")
        batch_op.drop_column("group_id")
        batch_op.drop_column("group_by")
