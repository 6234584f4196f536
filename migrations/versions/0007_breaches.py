"""breaches: alert signals grouped into one episode per SLO; Slack messages, incidents and the
outbox belong to the breach

Every alert that fired becomes a breach with the same number (its id), so open alerts keep their
Slack messages, their incidents (and dedup keys) and the buttons and `/slo ack N` of messages posted
before; the people's actions on it move to `breach_event`.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# tables whose rows belonged to an alert and now belong to its breach: (table, unique constraint)
MOVED = (
    ("slack_message", ("uq_slack_message_alert_channel", "uq_slack_message_breach_channel", "channel")),
    ("incident", ("uq_incident_alert_target", "uq_incident_breach_target", "target")),
    ("outbox", None),
)
SIGNAL_EVENTS = ("firing", "resolved")


def upgrade() -> None:
    op.create_table(
        "breach",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("slo_id", sa.Integer(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("severity", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("peak", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("state", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("clear_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("burn_rates", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("acknowledged_by", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("noted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("signal_noted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("escalated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("spent_ratio", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(["slo_id"], ["slo.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("breach", schema=None) as batch_op:
        batch_op.create_index("ix_breach_slo_kind_state", ["slo_id", "kind", "state"], unique=False)
    op.create_table(
        "breach_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("breach_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("actor", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["breach_id"], ["breach.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("breach_event", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_breach_event_breach_id"), ["breach_id"], unique=False)

    # every alert that fired is a breach of its own, numbered as the alert was
    op.execute(
        """
        INSERT INTO breach (id, slo_id, kind, severity, peak, state, opened_at, resolved_at, burn_rates,
                            reason, acknowledged_by, acknowledged_at, noted_at, escalated_at, spent_ratio)
        SELECT id, slo_id,
               CASE WHEN key LIKE 'budget-%' THEN 'budget' WHEN key = 'no-data' THEN 'no-data'
                    ELSE 'burn' END,
               key, key, state, fired_at, resolved_at, burn_rates, reason, acknowledged_by,
               acknowledged_at, noted_at, escalated_at, spent_ratio
        FROM alert
        WHERE fired_at IS NOT NULL AND state IN ('firing', 'resolved')
        """
    )
    if op.get_bind().dialect.name == "postgresql":  # ids were given: the sequence goes on after them
        op.execute(
            "SELECT setval(pg_get_serial_sequence('breach', 'id'), COALESCE(MAX(id), 0) + 1, false) "
            "FROM breach"
        )
    with op.batch_alter_table("alert", schema=None) as batch_op:
        batch_op.add_column(sa.Column("breach_id", sa.Integer(), nullable=True))
    op.execute("UPDATE alert SET breach_id = id WHERE id IN (SELECT id FROM breach)")
    events = ", ".join(f"'{e}'" for e in SIGNAL_EVENTS)
    op.execute(
        f"""
        INSERT INTO breach_event (breach_id, at, event, actor, detail)
        SELECT alert_id, at, event, actor, detail FROM alert_event
        WHERE event NOT IN ({events}) AND alert_id IN (SELECT id FROM breach)
        ORDER BY id
        """
    )
    op.execute(f"DELETE FROM alert_event WHERE event NOT IN ({events})")
    with op.batch_alter_table("alert", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_alert_breach_id"), ["breach_id"], unique=False)
        batch_op.create_foreign_key(
            "alert_breach_id_fkey", "breach", ["breach_id"], ["id"], ondelete="SET NULL"
        )
        for column in ("acknowledged_by", "acknowledged_at", "noted_at", "escalated_at", "spent_ratio"):
            batch_op.drop_column(column)

    for table, unique in MOVED:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("breach_id", sa.Integer(), nullable=True))
        # rows of an alert that never became a breach (none should exist) cannot be kept
        op.execute(f"DELETE FROM {table} WHERE alert_id NOT IN (SELECT id FROM breach)")
        op.execute(f"UPDATE {table} SET breach_id = alert_id")
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(f"ix_{table}_alert_id")
            if unique is not None:
                batch_op.drop_constraint(unique[0], type_="unique")
            batch_op.drop_column("alert_id")
            if table != "outbox":
                batch_op.alter_column("breach_id", existing_type=sa.Integer(), nullable=False)
            batch_op.create_foreign_key(
                f"{table}_breach_id_fkey", "breach", ["breach_id"], ["id"], ondelete="CASCADE"
            )
            batch_op.create_index(f"ix_{table}_breach_id", ["breach_id"], unique=False)
            if unique is not None:
                batch_op.create_unique_constraint(unique[1], ["breach_id", unique[2]])
    with op.batch_alter_table("incident", schema=None) as batch_op:
        batch_op.add_column(sa.Column("severity", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True))
    op.execute("UPDATE incident SET severity = (SELECT severity FROM breach WHERE breach.id = breach_id)")


def downgrade() -> None:
    """Back to one alert per message: each breach's messages, incidents and outbox entries go to the
    alert it was numbered after (its first signal); people's actions go back to that alert's trail."""
    with op.batch_alter_table("incident", schema=None) as batch_op:
        batch_op.drop_column("severity")
    for table, unique in MOVED:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("alert_id", sa.Integer(), nullable=True))
        op.execute(f"UPDATE {table} SET alert_id = breach_id")
        op.execute(f"DELETE FROM {table} WHERE alert_id NOT IN (SELECT id FROM alert)")
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(f"ix_{table}_breach_id")
            if unique is not None:
                batch_op.drop_constraint(unique[1], type_="unique")
            batch_op.drop_column("breach_id")
            if table != "outbox":
                batch_op.alter_column("alert_id", existing_type=sa.Integer(), nullable=False)
            batch_op.create_foreign_key(
                f"{table}_alert_id_fkey", "alert", ["alert_id"], ["id"], ondelete="CASCADE"
            )
            batch_op.create_index(f"ix_{table}_alert_id", ["alert_id"], unique=False)
            if unique is not None:
                batch_op.create_unique_constraint(unique[0], ["alert_id", unique[2]])
    with op.batch_alter_table("alert", schema=None) as batch_op:
        batch_op.add_column(sa.Column("acknowledged_by", sqlmodel.sql.sqltypes.AutoString(length=255)))
        batch_op.add_column(sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("noted_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("escalated_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("spent_ratio", sa.Float(), nullable=True))
    for column in ("acknowledged_by", "acknowledged_at", "noted_at", "escalated_at", "spent_ratio"):
        op.execute(f"UPDATE alert SET {column} = (SELECT {column} FROM breach WHERE breach.id = alert.id)")
    op.execute(
        """
        INSERT INTO alert_event (alert_id, at, event, actor, burn_rates, detail)
        SELECT breach_id, at, event, actor, '{}', detail FROM breach_event
        WHERE breach_id IN (SELECT id FROM alert)
        """
    )
    with op.batch_alter_table("alert", schema=None) as batch_op:
        batch_op.drop_constraint("alert_breach_id_fkey", type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_alert_breach_id"))
        batch_op.drop_column("breach_id")
    op.drop_table("breach_event")
    op.drop_table("breach")
