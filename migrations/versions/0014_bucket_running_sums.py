"""bucket running sums: a window's sum is the difference of two rows, not a scan of the window

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

SUMMED = ("good", "total", "covered_s", "good_slices", "slices", "ratio_sum")


def upgrade() -> None:
    # plain ADD COLUMN (no batch copy): the table stays WITHOUT ROWID on SQLite
    for column in SUMMED:
        op.add_column("bucket", sa.Column(f"cum_{column}", sa.Float(), nullable=False, server_default="0"))
    # the running sums of the buckets already stored, one window-function pass over the table
    sets = ", ".join(f"cum_{c} = r.cum_{c}" for c in SUMMED)
    sums = ", ".join(f"SUM({c}) OVER w AS cum_{c}" for c in SUMMED)
    op.execute(
        f"UPDATE bucket SET {sets} FROM (SELECT slo_id AS s, start_s AS st, resolution_s AS rs, {sums} "
        "FROM bucket WINDOW w AS (PARTITION BY slo_id ORDER BY start_s, resolution_s "
        "ROWS UNBOUNDED PRECEDING)) AS r "
        "WHERE bucket.slo_id = r.s AND bucket.start_s = r.st AND bucket.resolution_s = r.rs"
    )


def downgrade() -> None:
    with op.batch_alter_table("bucket") as batch_op:
        for column in SUMMED:
            batch_op.drop_column(f"cum_{column}")
