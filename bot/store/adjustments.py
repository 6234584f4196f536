"""Maintenance windows in the store: the catalogue's (replaced on apply), one-off ones from Slack,
and the buckets an excluded span reads. Functions over a caller-owned session; the caller commits.

The rows are the audit trail of the one-off windows: who made one and why, who cancelled it, when.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from sqlalchemy import delete, or_
from sqlmodel import Session, col
from sqlmodel import select as select_model

from bot.adjustments import Adjustment, Exclusions, Interval, excluded_counts, subtract
from bot.budget import WindowCounts
from bot.domain import Bucket
from bot.store import history, refunds
from bot.store.models import AdjustmentRecord
from bot.store.repo import BUCKETS, epoch, utc

CATALOGUE = "catalogue"
SLACK = "slack"


def as_adjustment(record: AdjustmentRecord) -> Adjustment:
    first = utc(record.first_start)
    assert first is not None
    return Adjustment(
        name=record.name,
        first_start=first,
        duration=timedelta(seconds=record.duration_s),
        description=record.description,
        rrule=record.rrule,
        time_zone=record.time_zone,
        slos=tuple(json.loads(record.slos)),
        services=tuple(json.loads(record.services)),
    )


def _record(adjustment: Adjustment, origin: str, now: datetime, by: str | None) -> AdjustmentRecord:
    return AdjustmentRecord(
        name=adjustment.name,
        origin=origin,
        description=adjustment.description,
        first_start=adjustment.first_start,
        duration_s=int(adjustment.duration.total_seconds()),
        rrule=adjustment.rrule,
        time_zone=adjustment.time_zone,
        slos=json.dumps(list(adjustment.slos)),
        services=json.dumps(list(adjustment.services)),
        created_by=by,
        created_at=now,
    )


def replace_declared(
    *, session: Session, adjustments: Sequence[Adjustment], now: datetime, prune: bool = False
) -> None:
    """Store the catalogue's windows, each replacing the one of its name; with `prune` the declared
    windows not in `adjustments` go too (like `apply --prune` does SLOs). One-off ones stay."""
    declared = col(AdjustmentRecord.origin) == CATALOGUE
    names = [a.name for a in adjustments]
    if prune:
        session.execute(delete(AdjustmentRecord).where(declared))
    else:
        session.execute(delete(AdjustmentRecord).where(declared, col(AdjustmentRecord.name).in_(names)))
    session.add_all([_record(a, CATALOGUE, now, None) for a in adjustments])


def add_one_off(*, session: Session, adjustment: Adjustment, by: str, now: datetime) -> AdjustmentRecord:
    record = _record(adjustment, SLACK, now, by)
    session.add(record)
    session.flush()
    return record


def cancel(*, session: Session, ident: int, by: str, now: datetime) -> AdjustmentRecord | None:
    """Cancel the one-off window `ident` (its end moves to `now` if it is under way); None when
    there is no such window still in force."""
    record = session.get(AdjustmentRecord, ident)
    if record is None or record.origin != SLACK or record.cancelled_at is not None:
        return None
    start = utc(record.first_start)
    assert start is not None
    if start < now:  # what already passed stays excluded: the window only ends early
        record.duration_s = min(record.duration_s, int((now - start).total_seconds()))
    else:
        record.duration_s = 0
    record.cancelled_by = by
    record.cancelled_at = now
    session.add(record)
    return record


def in_force(*, session: Session) -> list[AdjustmentRecord]:
    """Every declared window and every one-off one not cancelled before it began."""
    rows = session.exec(select_model(AdjustmentRecord).order_by(col(AdjustmentRecord.id))).all()
    return [r for r in rows if r.duration_s > 0]


def one_offs(*, session: Session, since: datetime) -> list[AdjustmentRecord]:
    """One-off windows that end after `since`, cancelled ones too (the audit trail), oldest first."""
    rows = session.exec(
        select_model(AdjustmentRecord)
        .where(col(AdjustmentRecord.origin) == SLACK)
        .order_by(col(AdjustmentRecord.first_start))
    ).all()
    return [r for r in rows if (utc(r.first_start) or since) + timedelta(seconds=r.duration_s) > since]


def load_exclusions(*, session: Session) -> Exclusions:
    """What every evaluation of a tick excludes: read once for all SLOs."""
    return Exclusions(
        tuple(as_adjustment(r) for r in in_force(session=session)), refunds.intervals(session=session)
    )


def buckets_over(*, session: Session, slo_id: int, intervals: Sequence[Interval]) -> list[Bucket]:
    """The stored buckets that overlap any of `intervals`, oldest first."""
    if not intervals:
        return []
    overlaps = [
        (BUCKETS.c.start_s < epoch(b)) & (BUCKETS.c.start_s + BUCKETS.c.resolution_s > epoch(a))
        for a, b in intervals
    ]
    return history.read_buckets(session, BUCKETS.c.slo_id == slo_id, or_(*overlaps))


def subtract_excluded(
    *,
    session: Session,
    slo_id: int,
    excluded: Sequence[Interval],
    end: datetime,
    counts: Mapping[timedelta, WindowCounts],
) -> dict[timedelta, WindowCounts]:
    """`counts` (the SLO's window sums ending at `end`) less what its stored buckets hold inside
    `excluded`: the exclusion is read, never written, so a window declared afterwards counts back."""
    if not excluded:
        return dict(counts)
    buckets = buckets_over(session=session, slo_id=slo_id, intervals=excluded)
    return subtract(counts, excluded_counts(buckets, excluded, end, list(counts)))
