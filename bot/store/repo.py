"""Store operations over a caller-owned session: SLO records, buckets, rollups, status snapshots.

Every function takes `session` by keyword and never commits: one scheduler tick per SLO is one
transaction, committed by the caller.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import case, delete, func, insert, literal, select
from sqlmodel import Session
from sqlmodel import select as select_model

from bot.buckets import EPOCH, rollup
from bot.budget import Status, WindowCounts
from bot.domain import Bucket
from bot.durations import format_duration
from bot.store.models import BucketRecord, SLORecord, SnapshotRecord

BUCKETS = BucketRecord.__table__  # type: ignore[attr-defined]
SNAPSHOTS = SnapshotRecord.__table__  # type: ignore[attr-defined]


def utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything stored is UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def checksum(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def _epoch(at: datetime) -> int:
    return int((at - EPOCH).total_seconds())


# --- SLO records -------------------------------------------------------------------------------


def list_slos(*, session: Session) -> list[SLORecord]:
    return list(session.exec(select_model(SLORecord).order_by(SLORecord.name)))


def get_slo(*, session: Session, name: str) -> SLORecord | None:
    return session.exec(select_model(SLORecord).where(SLORecord.name == name)).first()


def upsert_slo(
    *,
    session: Session,
    name: str,
    service: str,
    documents: Sequence[Mapping[str, Any]],
    data_checksum: str,
    now: datetime,
) -> str:
    """Create or update one SLO; returns "created", "updated" or "unchanged".

    When what the buckets mean changes (another query, method or slice), the stored history no
    longer describes this SLO and is discarded; a new description alone keeps it.
    """
    doc_checksum = checksum(list(documents))
    record = get_slo(session=session, name=name)
    if record is None:
        session.add(
            SLORecord(
                name=name,
                service=service,
                documents=json.dumps(list(documents)),
                checksum=doc_checksum,
                data_checksum=data_checksum,
                created_at=now,
                updated_at=now,
            )
        )
        return "created"
    if record.checksum == doc_checksum and record.data_checksum == data_checksum:
        return "unchanged"
    if record.data_checksum != data_checksum:
        session.execute(delete(BUCKETS).where(BUCKETS.c.slo_id == record.id))
        record.covered_from = record.covered_to = None
    record.service = service
    record.documents = json.dumps(list(documents))
    record.checksum = doc_checksum
    record.data_checksum = data_checksum
    record.updated_at = now
    session.add(record)
    return "updated"


def delete_slos_except(*, session: Session, keep: Iterable[str]) -> list[str]:
    """Remove SLOs not named in `keep` with their buckets and snapshots (`apply --prune`)."""
    keep_set = set(keep)
    gone = [r for r in list_slos(session=session) if r.name not in keep_set]
    for record in gone:
        session.execute(delete(BUCKETS).where(BUCKETS.c.slo_id == record.id))
        session.execute(delete(SNAPSHOTS).where(SNAPSHOTS.c.slo_id == record.id))
        session.delete(record)
    return [r.name for r in gone]


def set_coverage(
    *, session: Session, record: SLORecord, covered_from: datetime, covered_to: datetime
) -> None:
    record.covered_from = covered_from
    record.covered_to = covered_to
    session.add(record)


# --- buckets -------------------------------------------------------------------------------------


def replace_buckets(
    *, session: Session, slo_id: int, start: datetime, end: datetime, buckets: Sequence[Bucket]
) -> None:
    """Make [start, end) hold exactly `buckets`, whatever resolution was stored there before."""
    session.execute(
        delete(BUCKETS).where(
            BUCKETS.c.slo_id == slo_id,
            BUCKETS.c.start_s >= _epoch(start),
            BUCKETS.c.start_s < _epoch(end),
        )
    )
    _insert(session, slo_id, buckets)


def _insert(session: Session, slo_id: int, buckets: Sequence[Bucket]) -> None:
    if not buckets:
        return
    session.execute(
        insert(BUCKETS),
        [
            {
                "slo_id": slo_id,
                "resolution_s": int(b.resolution.total_seconds()),
                "start_s": _epoch(b.start),
                "good": b.good,
                "total": b.total,
                "covered_s": int(b.covered.total_seconds()),
                "good_slices": b.good_slices,
                "slices": b.slices,
                "ratio_sum": b.ratio_sum,
            }
            for b in buckets
        ],
    )


def load_buckets(*, session: Session, slo_id: int, since: datetime) -> list[Bucket]:
    """Buckets that end after `since`, oldest first."""
    rows = session.execute(
        select(
            BUCKETS.c.start_s,
            BUCKETS.c.resolution_s,
            BUCKETS.c.good,
            BUCKETS.c.total,
            BUCKETS.c.covered_s,
            BUCKETS.c.good_slices,
            BUCKETS.c.slices,
            BUCKETS.c.ratio_sum,
        )
        .where(BUCKETS.c.slo_id == slo_id, BUCKETS.c.start_s >= _epoch(since) - 3600)
        .order_by(BUCKETS.c.start_s)
    )
    since_s = _epoch(since)
    return [
        Bucket(
            EPOCH + timedelta(seconds=start_s),
            timedelta(seconds=res),
            good=good,
            total=total,
            covered=timedelta(seconds=covered),
            good_slices=good_slices,
            slices=slices,
            ratio_sum=ratio_sum,
        )
        for start_s, res, good, total, covered, good_slices, slices, ratio_sum in rows
        if start_s + res > since_s
    ]


_SUMMED = ("good", "total", "good_slices", "slices", "ratio_sum", "covered_s")


def window_sums(
    *, session: Session, slo_id: int, end: datetime, windows: Sequence[timedelta]
) -> dict[timedelta, WindowCounts]:
    """Sum the buckets of each window [end - w, end) in the database, in one query.

    The same arithmetic as `bot.buckets.window_counts` (a bucket cut by a window's start counts in
    proportion), done where the rows are: a tick reads 48 numbers, not thousands of rows.
    """
    end_s = _epoch(end)
    columns = []
    for w in windows:
        start_s = end_s - int(w.total_seconds())
        share = case(
            (BUCKETS.c.start_s >= start_s, literal(1.0)),
            (
                BUCKETS.c.start_s + BUCKETS.c.resolution_s > start_s,
                (BUCKETS.c.start_s + BUCKETS.c.resolution_s - start_s) * 1.0 / BUCKETS.c.resolution_s,
            ),
            else_=literal(0.0),
        )
        columns += [func.coalesce(func.sum(BUCKETS.c[name] * share), 0.0) for name in _SUMMED]
    longest = max(windows)
    row = session.execute(
        select(*columns).where(
            BUCKETS.c.slo_id == slo_id,
            BUCKETS.c.start_s < end_s,
            BUCKETS.c.start_s + BUCKETS.c.resolution_s > end_s - int(longest.total_seconds()),
        )
    ).one()
    sums: dict[timedelta, WindowCounts] = {}
    for index, w in enumerate(windows):
        good, total, good_slices, slices, ratio_sum, covered = (
            float(v) for v in row[index * 6 : index * 6 + 6]
        )
        sums[w] = WindowCounts(good, total, good_slices, slices, ratio_sum, timedelta(seconds=covered), w)
    return sums


def roll_up(*, session: Session, slo_id: int, source: timedelta, target: timedelta, before: datetime) -> int:
    """Merge `source`-resolution buckets that start before `before` into `target` ones."""
    source_s = int(source.total_seconds())
    condition = (
        BUCKETS.c.slo_id == slo_id,
        BUCKETS.c.resolution_s == source_s,
        BUCKETS.c.start_s < _epoch(before),
    )
    rows = session.execute(
        select(
            BUCKETS.c.start_s,
            BUCKETS.c.good,
            BUCKETS.c.total,
            BUCKETS.c.covered_s,
            BUCKETS.c.good_slices,
            BUCKETS.c.slices,
            BUCKETS.c.ratio_sum,
        ).where(*condition)
    ).all()
    if not rows:
        return 0
    merged = rollup(
        (
            Bucket(
                EPOCH + timedelta(seconds=r[0]),
                source,
                good=r[1],
                total=r[2],
                covered=timedelta(seconds=r[3]),
                good_slices=r[4],
                slices=r[5],
                ratio_sum=r[6],
            )
            for r in rows
        ),
        target,
    )
    session.execute(delete(BUCKETS).where(*condition))
    target_s = int(target.total_seconds())
    session.execute(
        delete(BUCKETS).where(
            BUCKETS.c.slo_id == slo_id,
            BUCKETS.c.resolution_s == target_s,
            BUCKETS.c.start_s.in_([_epoch(b.start) for b in merged]),
        )
    )
    _insert(session, slo_id, merged)
    return len(rows)


def trim_buckets(*, session: Session, slo_id: int, before: datetime) -> None:
    """Drop buckets that ended before `before`: outside every window the SLO still reads."""
    session.execute(
        delete(BUCKETS).where(
            BUCKETS.c.slo_id == slo_id,
            BUCKETS.c.start_s + BUCKETS.c.resolution_s <= _epoch(before),
        )
    )


def count_buckets(*, session: Session, slo_id: int | None = None) -> int:
    query = select(func.count()).select_from(BUCKETS)
    if slo_id is not None:
        query = query.where(BUCKETS.c.slo_id == slo_id)
    return int(session.execute(query).scalar_one())


# --- status snapshots ----------------------------------------------------------------------------

SNAPSHOT_RETENTION = timedelta(hours=6)


def add_snapshot(*, session: Session, slo_id: int, status: Status, error: str | None) -> None:
    session.add(
        SnapshotRecord(
            slo_id=slo_id,
            evaluated_at=status.evaluated_at,
            sli=status.sli,
            good=status.good,
            total=status.total,
            consumed_ratio=status.consumed_ratio,
            remaining_ratio=status.remaining_ratio,
            burn_rates=json.dumps({format_duration(w): b for w, b in status.burn_rates.items()}),
            exhaustion_at=status.exhaustion_at,
            state=status.state,
            coverage_ratio=status.coverage_ratio,
            error=error,
        )
    )
    session.execute(
        delete(SNAPSHOTS).where(
            SNAPSHOTS.c.slo_id == slo_id,
            SNAPSHOTS.c.evaluated_at < status.evaluated_at - SNAPSHOT_RETENTION,
        )
    )


def latest_snapshots(*, session: Session) -> list[tuple[SLORecord, SnapshotRecord | None]]:
    """Every SLO with its newest snapshot (None when never evaluated)."""
    newest = (
        select(SNAPSHOTS.c.slo_id, func.max(SNAPSHOTS.c.id).label("id"))
        .group_by(SNAPSHOTS.c.slo_id)
        .subquery()
    )
    snapshots = {
        s.slo_id: s
        for s in session.exec(
            select_model(SnapshotRecord).join(newest, SnapshotRecord.id == newest.c.id)  # type: ignore[arg-type]
        )
    }
    return [(r, snapshots.get(r.id or 0)) for r in list_slos(session=session)]
