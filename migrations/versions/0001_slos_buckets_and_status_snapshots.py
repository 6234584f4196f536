"""SLOs, buckets and status snapshots

Revision ID: 0001
Revises: 
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('slo',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('service', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('documents', sa.Text(), nullable=False),
    sa.Column('checksum', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('data_checksum', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('covered_from', sa.DateTime(timezone=True), nullable=True),
    sa.Column('covered_to', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('slo', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_slo_name'), ['name'], unique=True)
        batch_op.create_index(batch_op.f('ix_slo_service'), ['service'], unique=False)

    op.create_table('bucket',
    sa.Column('slo_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('start_s', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('resolution_s', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('good', sa.Float(), nullable=False),
    sa.Column('total', sa.Float(), nullable=False),
    sa.Column('covered_s', sa.Integer(), nullable=False),
    sa.Column('good_slices', sa.Float(), nullable=False),
    sa.Column('slices', sa.Float(), nullable=False),
    sa.Column('ratio_sum', sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(['slo_id'], ['slo.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('slo_id', 'start_s', 'resolution_s'),
    sqlite_with_rowid=False,
    )
    op.create_table('status_snapshot',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('slo_id', sa.Integer(), nullable=False),
    sa.Column('evaluated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('sli', sa.Float(), nullable=True),
    sa.Column('good', sa.Float(), nullable=False),
    sa.Column('total', sa.Float(), nullable=False),
    sa.Column('consumed_ratio', sa.Float(), nullable=True),
    sa.Column('remaining_ratio', sa.Float(), nullable=True),
    sa.Column('burn_rates', sa.Text(), nullable=False),
    sa.Column('exhaustion_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('state', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('coverage_ratio', sa.Float(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['slo_id'], ['slo.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('status_snapshot', schema=None) as batch_op:
        batch_op.create_index('ix_status_snapshot_slo_time', ['slo_id', 'evaluated_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('status_snapshot', schema=None) as batch_op:
        batch_op.drop_index('ix_status_snapshot_slo_time')

    op.drop_table('status_snapshot')
    op.drop_table('bucket')
    with op.batch_alter_table('slo', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_slo_service'))
        batch_op.drop_index(batch_op.f('ix_slo_name'))

    op.drop_table('slo')
