"""Table models. These are storage rows, not the domain types of `bot.domain`."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, DateTime, ForeignKey, Index, Integer, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


class Table(SQLModel):
    """A table's row. Pydantic builds a model's validator and serializer when it is first used, not
    when the class is defined: rows are built by SQLAlchemy and by SQLModel without validation, so
    most commands never use them, and every command that reads the database paid for 20 at import."""

    model_config = SQLModel.model_config | {"defer_build": True}


class SLORecord(Table, table=True):
    """An applied SLO: its OpenSLO documents (with `${NAME}` left in) and what has been fetched."""

    __tablename__ = "slo"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True, unique=True, max_length=255)
    service: str = Field(index=True, max_length=255)
    documents: str = Field(sa_column=Column(Text, nullable=False))  # JSON list of documents
    checksum: str = Field(max_length=64)  # of `documents`: apply is a no-op when unchanged
    # of what the stored buckets mean (indicator, method, slices): a change discards them
    data_checksum: str = Field(max_length=64)
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    updated_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    # [covered_from, covered_to): the range whose buckets have been asked of the source
    covered_from: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )
    covered_to: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )
    # set while the SLO's evaluations fail (since when, of what kind, why); cleared by the next success
    failing_since: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )
    failure_kind: str | None = Field(default=None, max_length=32)
    failure: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    # A grouped SLO (`slo-bot/group-by`) is a definition row (`group_by`: its labels, comma-separated)
    # whose coverage is that of its queries, and one member row per label value seen (`group_id`: the
    # definition, `group_key`: the values as a JSON list) with its own buckets, breaches, snapshots.
    group_by: str | None = Field(default=None, max_length=255)
    group_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("slo.id", ondelete="CASCADE"), nullable=True, index=True),
    )
    group_key: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    # a member's newest bucket with data ends here: it retires after a quiet period (`bot.groups`)
    last_data_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )


class BucketRecord(Table, table=True):
    """Events of one SLO over [start, start + resolution). Times are epoch seconds: compact, exact."""

    __tablename__ = "bucket"
    # SQLite keeps the rows in primary-key order: an SLO's buckets are read as one contiguous range
    __table_args__ = {"sqlite_with_rowid": False}

    slo_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("slo.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
        )
    )
    # (slo_id, start_s, resolution_s): a window of one SLO is one range of the primary key
    start_s: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False, nullable=False))
    resolution_s: int = Field(
        sa_column=Column(Integer, primary_key=True, autoincrement=False, nullable=False)
    )
    good: float = 0.0
    total: float = 0.0
    covered_s: int = 0
    good_slices: float = 0.0
    slices: float = 0.0
    ratio_sum: float = 0.0
    # Running sums: each column above summed over this SLO's buckets up to and including this one
    # (in (start_s, resolution_s) order, since the SLO's first bucket, trimmed ones too). A window's
    # sum is the difference of two rows' (bot.store.history), not a scan of its ~1,800 rows.
    cum_good: float = 0.0
    cum_total: float = 0.0
    cum_covered_s: float = 0.0
    cum_good_slices: float = 0.0
    cum_slices: float = 0.0
    cum_ratio_sum: float = 0.0


class SnapshotRecord(Table, table=True):
    """What one evaluation found; `slo-bot status` prints the newest per SLO."""

    __tablename__ = "status_snapshot"
    __table_args__ = (Index("ix_status_snapshot_slo_time", "slo_id", "evaluated_at"),)

    id: int | None = Field(default=None, primary_key=True)
    slo_id: int = Field(sa_column=Column(Integer, ForeignKey("slo.id", ondelete="CASCADE"), nullable=False))
    evaluated_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    sli: float | None = None
    good: float = 0.0
    total: float = 0.0
    consumed_ratio: float | None = None
    remaining_ratio: float | None = None
    burn_rates: str = Field(sa_column=Column(Text, nullable=False))  # JSON {"5m": 0.3, ...}
    exhaustion_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )
    state: str = Field(max_length=16)
    coverage_ratio: float = 0.0
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    # data-quality notes, one a line: a partial answer, more good than total events
    notes: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class BudgetReadingRecord(Table, table=True):
    """An SLO's budget at its first evaluation of each UTC day, kept for a quarter: what `slo-bot
    report` compares the end of a period with (a rolling window's buckets of then are gone)."""

    __tablename__ = "budget_reading"
    __table_args__ = {"sqlite_with_rowid": False}

    slo_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("slo.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
        )
    )
    day_s: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False, nullable=False))
    evaluated_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    remaining_ratio: float | None = None


class DigestRecord(Table, table=True):
    """A channel's weekly digest (`bot.digest`): when it is due, who set it, and the due time of the
    last one sent (moved by the one replica that sends it: each digest goes once)."""

    __tablename__ = "digest"

    channel: str = Field(primary_key=True, max_length=255)
    schedule: str = Field(max_length=255)  # `monday 09:00 Europe/Berlin`
    origin: str = Field(max_length=16)  # slack (`/slo digest`) | catalogue (`slo-bot/digest`)
    set_by: str | None = Field(default=None, max_length=255)
    set_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    last_due_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )
    sent_by: str | None = Field(default=None, max_length=255)  # the replica


class BreachRecord(Table, table=True):
    """One breach of one SLO (see `bot.breaches`): what Slack shows as one message and the incident
    tools as one incident. Its number, shown on the message, is its `id`.

    `kind` is `burn`, `no-data` or `budget` (a budget notice of its own); `state` is `firing` or
    `resolved`. At most one breach of each kind is firing per SLO.
    """

    __tablename__ = "breach"
    __table_args__ = (Index("ix_breach_slo_kind_state", "slo_id", "kind", "state"),)

    id: int | None = Field(default=None, primary_key=True)
    slo_id: int = Field(sa_column=Column(Integer, ForeignKey("slo.id", ondelete="CASCADE"), nullable=False))
    kind: str = Field(max_length=16)
    severity: str = Field(max_length=32)  # the headline: the most severe signal firing now
    peak: str = Field(max_length=32)  # the most severe it has been
    state: str = Field(max_length=16)
    opened_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    resolved_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    # every signal clear since then: the breach ends if they stay clear at the next evaluation
    clear_since: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    burn_rates: str = Field(default="{}", sa_column=Column(Text, nullable=False))  # of the headline
    reason: str = Field(default="", sa_column=Column(Text, nullable=False))
    acknowledged_by: str | None = Field(default=None, max_length=255)
    acknowledged_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    # last re-evaluation posted in the breach's Slack thread: they are rate-limited
    noted_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    # last note of a signal joining or leaving: a flapping signal writes one every few minutes at most
    signal_noted_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    # when an unacknowledged page was escalated (on-call group mentioned, incident tools told): once
    escalated_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    # the share of the budget the breach spent, measured when it resolved (see `bot.episodes`)
    spent_ratio: float | None = None


class BreachEventRecord(Table, table=True):
    """What happened to a breach and who did it: acknowledged, silenced, escalated, declared ..."""

    __tablename__ = "breach_event"

    id: int | None = Field(default=None, primary_key=True)
    breach_id: int = Field(
        sa_column=Column(Integer, ForeignKey("breach.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    event: str = Field(max_length=32)
    actor: str | None = Field(default=None, max_length=255)  # None: slo-bot itself
    detail: str = Field(default="", sa_column=Column(Text, nullable=False))


class AlertRecord(Table, table=True):
    """One alert signal of one SLO and key (`page`, `ticket`, `budget-25`, `no-data`), open or past.

    `state` is `pending` (its condition holds, `alertAfter` not yet elapsed), `firing` or
    `resolved`. At most one pending or firing alert exists per SLO and key. A firing signal belongs to
    a breach (`breach_id`): the one it opened or joined, or, for a budget threshold, the breach whose
    thread noted the crossing.
    """

    __tablename__ = "alert"
    __table_args__ = (Index("ix_alert_slo_key_state", "slo_id", "key", "state"),)

    id: int | None = Field(default=None, primary_key=True)
    slo_id: int = Field(sa_column=Column(Integer, ForeignKey("slo.id", ondelete="CASCADE"), nullable=False))
    breach_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("breach.id", ondelete="SET NULL"), nullable=True, index=True),
    )
    key: str = Field(max_length=32)
    state: str = Field(max_length=16)
    since: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    fired_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    resolved_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    burn_rates: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    reason: str = Field(default="", sa_column=Column(Text, nullable=False))


class AlertEventRecord(Table, table=True):
    """Every transition of an alert: when, what caused it (burn rates) and who acted."""

    __tablename__ = "alert_event"

    id: int | None = Field(default=None, primary_key=True)
    alert_id: int = Field(
        sa_column=Column(Integer, ForeignKey("alert.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    event: str = Field(max_length=32)  # firing, resolved, acknowledged, unacknowledged, silenced ...
    actor: str | None = Field(default=None, max_length=255)  # None: slo-bot itself
    burn_rates: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    detail: str = Field(default="", sa_column=Column(Text, nullable=False))


class SilenceRecord(Table, table=True):
    """While `until` is ahead and `ended_at` unset, the SLO posts nothing to Slack."""

    __tablename__ = "silence"

    id: int | None = Field(default=None, primary_key=True)
    slo_id: int = Field(
        sa_column=Column(Integer, ForeignKey("slo.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    until: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    reason: str = Field(default="", sa_column=Column(Text, nullable=False))
    created_by: str = Field(max_length=64)
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    ended_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    ended_by: str | None = Field(default=None, max_length=64)


class SubscriptionRecord(Table, table=True):
    """`/slo subscribe SERVICE #channel`: the service's alerts also go to the channel."""

    __tablename__ = "subscription"
    __table_args__ = (UniqueConstraint("service", "channel", name="uq_subscription_service_channel"),)

    id: int | None = Field(default=None, primary_key=True)
    service: str = Field(max_length=255, index=True)
    channel: str = Field(max_length=64)
    created_by: str = Field(max_length=64, index=True)
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class SlackMessageRecord(Table, table=True):
    """A breach's one message in one channel: posted once (then `ts` is known), updated in place."""

    __tablename__ = "slack_message"
    __table_args__ = (UniqueConstraint("breach_id", "channel", name="uq_slack_message_breach_channel"),)

    id: int | None = Field(default=None, primary_key=True)
    breach_id: int = Field(
        sa_column=Column(Integer, ForeignKey("breach.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    channel: str = Field(max_length=64)  # as routed (an ID, or a #name)
    posted_channel: str | None = Field(default=None, max_length=64)  # the ID Slack answered with
    ts: str | None = Field(default=None, max_length=32, index=True)


class OutboxRecord(Table, table=True):
    """A Slack or incident tool call to make. Written in the transaction that decided it, so a crash
    or an outage delays it but never loses it; delivered in `id` order per breach and destination."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "status", "next_attempt_at"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=32)  # alert_message | thread_note | incident
    breach_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("breach.id", ondelete="CASCADE"), nullable=True, index=True),
    )
    channel: str | None = Field(default=None, max_length=64)  # Slack channel, or incident target name
    payload: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    status: str = Field(default="pending", max_length=16)  # pending | done | failed
    attempts: int = 0
    in_flight: bool = False  # a post was sent and its answer not recorded: check before resending
    next_attempt_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    done_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    # the replica delivering it now, and until when that claim holds (a replica killed mid-call
    # leaves a claim that expires; another replica then checks whether the call went through)
    claimed_by: str | None = Field(default=None, max_length=255)
    claimed_until: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))


class IncidentRecord(Table, table=True):
    """A breach as opened in one incident tool (one row per breach and AlertNotificationTarget), and
    its state there as slo-bot last heard it: from its own calls, or from the tool's webhooks."""

    __tablename__ = "incident"
    __table_args__ = (UniqueConstraint("breach_id", "target", name="uq_incident_breach_target"),)

    id: int | None = Field(default=None, primary_key=True)
    breach_id: int = Field(
        sa_column=Column(Integer, ForeignKey("breach.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    target: str = Field(max_length=64)  # the AlertNotificationTarget's name
    kind: str = Field(max_length=32)  # pagerduty | opsgenie | squadcast | webhook
    # one per breach ("slo-bot/<slo>/<breach>"); PagerDuty's incident_key, Opsgenie's alias, Squadcast's
    # event_id. (Incidents opened before breaches existed keep their "slo-bot/<slo>/<severity>".)
    dedup_key: str = Field(max_length=255, index=True)
    state: str = Field(default="queued", max_length=16)  # queued | triggered | acknowledged | resolved
    severity: str | None = Field(default=None, max_length=32)  # as last sent: a page raises a ticket
    declared_by: str | None = Field(default=None, max_length=64)  # who declared it from Slack
    external_id: str | None = Field(default=None, max_length=64)  # the tool's incident id
    number: str | None = Field(default=None, max_length=32)  # the incident number people quote
    url: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    changed_by: str | None = Field(default=None, max_length=255)  # who moved it last, in the tool
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    updated_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class WebhookEventRecord(Table, table=True):
    """Webhook deliveries already handled, per tool: a replayed or retried one never acts twice."""

    __tablename__ = "webhook_event"

    source: str = Field(primary_key=True, max_length=32)
    event_id: str = Field(primary_key=True, max_length=128)
    received_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False, index=True))


class SlackEventRecord(Table, table=True):
    """Slack event ids already handled: a retried delivery (`X-Slack-Retry-Num`) never acts twice."""

    __tablename__ = "slack_event"

    event_id: str = Field(primary_key=True, max_length=64)
    received_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class LeaseRecord(Table, table=True):
    """Which replica evaluates an SLO in which tick: taken in batches with `FOR UPDATE SKIP LOCKED`,
    done in the transaction that stores the SLO's evaluation, so each tick evaluates it once."""

    __tablename__ = "slo_lease"

    slo_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("slo.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
        )
    )
    holder: str | None = Field(default=None, max_length=255)  # the replica (bot.fleet.replica_name)
    tick: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True))
    expires_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )
    done_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True))


class FleetJobRecord(Table, table=True):
    """A job that one replica of the fleet runs per period (maintenance): whoever moves `last_run_at`."""

    __tablename__ = "fleet_job"

    name: str = Field(primary_key=True, max_length=64)
    holder: str | None = Field(default=None, max_length=255)
    last_run_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )


class AdjustmentRecord(Table, table=True):
    """A maintenance window (`bot.adjustments.Adjustment`): declared in the catalogue (replaced on
    every apply) or a one-off made in Slack, kept with who made it, why, and who cancelled it."""

    __tablename__ = "budget_adjustment"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=255, index=True)
    origin: str = Field(max_length=16)  # catalogue | slack
    description: str = Field(default="", sa_column=Column(Text, nullable=False))
    first_start: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    duration_s: int = Field(sa_column=Column(BigInteger, nullable=False))
    rrule: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    time_zone: str = Field(default="UTC", max_length=64)
    slos: str = Field(default="[]", sa_column=Column(Text, nullable=False))  # JSON list of names
    services: str = Field(default="[]", sa_column=Column(Text, nullable=False))
    created_by: str | None = Field(default=None, max_length=64)  # a Slack user id; None: the catalogue
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    cancelled_by: str | None = Field(default=None, max_length=64)
    cancelled_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )


class RefundRecord(Table, table=True):
    """A resolved breach marked a false positive: its span [excluded_from, excluded_to) counts like a
    maintenance window (its budget given back) until the refund is undone. Who and why are kept."""

    __tablename__ = "breach_refund"

    id: int | None = Field(default=None, primary_key=True)
    breach_id: int = Field(
        sa_column=Column(Integer, ForeignKey("breach.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    excluded_from: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    excluded_to: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    by: str = Field(max_length=64)
    why: str = Field(default="", sa_column=Column(Text, nullable=False))
    at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    undone_by: str | None = Field(default=None, max_length=64)
    undone_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True))
