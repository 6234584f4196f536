"""Store operations over a caller-owned session: SLO records, buckets, rollups, status snapshots.

Every function takes `session` by keyword and never commits: one scheduler tick per SLO is one
transaction, committed by the caller.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import delete, event, func, insert, inspect, select, text, update
from sqlalchemy.orm import defer
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, col
from sqlmodel import select as select_model

from bot.buckets import EPOCH
from bot.budget import Status
from bot.durations import format_duration, parse_duration
from bot.store.models import BucketRecord, SLORecord, SnapshotRecord

BUCKETS = BucketRecord.__table__  # type: ignore[attr-defined]
SNAPSHOTS = SnapshotRecord.__table__  # type: ignore[attr-defined]
SLOS = SLORecord.__table__  # type: ignore[attr-defined]
K = TypeVar("K")
V = TypeVar("V")
_TRANSACTION = "slo_bot_per_transaction"


def utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything stored is UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def checksum(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def epoch(at: datetime) -> int:
    return int((at - EPOCH).total_seconds())


def per_transaction(session: Session, key: str, make: Callable[[], V]) -> V:
    """A value kept in the session for its open transaction: made at first use, dropped when the
    transaction commits or rolls back (e.g. what a batch of SLOs' hooks would each read again)."""
    kept: dict[str, Any] | None = session.info.get(_TRANSACTION)
    if kept is None:
        kept = session.info[_TRANSACTION] = {}

        def drop_all(_session: Session, *_: object) -> None:
            kept.clear()

        event.listen(session, "after_commit", drop_all)
        event.listen(session, "after_rollback", drop_all)
    if key not in kept:
        kept[key] = make()
    value: V = kept[key]
    return value


def forget(session: Session, key: str) -> None:
    """Drop a `per_transaction` value: what it was made from changed in the transaction."""
    session.info.get(_TRANSACTION, {}).pop(key, None)


# --- SLO records -------------------------------------------------------------------------------


def list_slos(*, session: Session, members: bool = False) -> list[SLORecord]:
    """The SLOs as applied (a grouped SLO's definition, not its members), by name; with `members`,
    the members of grouped SLOs (and a composite's parts) too.

    A member's row repeats its definition's `documents` (`bot.store.groups.add_member`; `upsert_slo`
    keeps them equal): read with members, each definition's text is read once and shared by its
    members, not sent and held once per member (thousands of copies of the same catalogue)."""
    query = select_model(SLORecord).order_by(SLORecord.name)
    if not members:
        return list(session.exec(query.where(col(SLORecord.group_id).is_(None))))
    records = list(session.exec(query.options(defer(SLORecord.documents))))  # type: ignore[arg-type]
    texts = dict(session.execute(select(SLOS.c.id, SLOS.c.documents).where(SLOS.c.group_id.is_(None))).all())
    for record in records:
        shared = texts.get(record.group_id or record.id)
        # as if read from its row (nothing to write back); a row this session holds already keeps
        # what it holds
        if shared is not None and "documents" not in inspect(record).dict:
            set_committed_value(record, "documents", shared)
    return records


def without_parts(records: Sequence[SLORecord]) -> list[SLORecord]:
    """`records` (read with members) less the parts of composite SLOs: a composite is one SLO, its
    parts' rows point at it as a grouped SLO's members point at their definition."""
    singles = {r.id for r in records if r.group_id is None and not r.group_by}
    return [r for r in records if r.group_id is None or r.group_id not in singles]


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
    group_by: Sequence[str] = (),
) -> str:
    """Create or update one SLO; returns "created", "updated" or "unchanged".

    When what the buckets mean changes (another query, method, slice or group labels), the stored
    history no longer describes this SLO and is discarded, with the members of a grouped one; a new
    description alone keeps it (and is given to the members).
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
                group_by=",".join(group_by) or None,
            )
        )
        return "created"
    if record.checksum == doc_checksum and record.data_checksum == data_checksum:
        return "unchanged"
    if record.data_checksum != data_checksum:
        session.execute(delete(BUCKETS).where(BUCKETS.c.slo_id == record.id))
        session.execute(delete(SLOS).where(SLOS.c.group_id == record.id))
        record.covered_from = record.covered_to = None
    else:
        session.execute(
            update(SLOS)
            .where(SLOS.c.group_id == record.id)
            .values(
                service=service, documents=json.dumps(list(documents)), checksum=doc_checksum, updated_at=now
            )
        )
    record.service = service
    record.documents = json.dumps(list(documents))
    record.checksum = doc_checksum
    record.data_checksum = data_checksum
    record.updated_at = now
    record.group_by = ",".join(group_by) or None
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


def commit_without_flush_wait(*, session: Session) -> None:
    """PostgreSQL: this transaction's commit returns before its WAL reaches the disk.

    An evaluation's commit otherwise waits for a disk flush (most of a steady tick's cost per SLO).
    A database crash can then lose the last fraction of a second of commits, whole: each is an SLO's
    tick (buckets, signals, breach, queued messages together), and the next tick redoes it from the
    source. (`synchronous_commit`, PostgreSQL's own switch; never corruption.) SQLite: nothing."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL synchronous_commit TO OFF"))


def update_if(
    *,
    session: Session,
    record: Any,
    when: Sequence[Any],
    values: Mapping[str, Any],
    reread: Sequence[str] = (),
) -> bool:
    """Write `values` to the stored row of `record` only while the conditions `when` hold: for a row
    that another transaction (a webhook, a person's click) may have changed since the caller read it.
    One statement, so the check and the write are one step on both databases (PostgreSQL re-reads a
    row a concurrent transaction changed). True when written; otherwise `record` shows what was
    committed meanwhile (the attributes `reread`, all of them when none are named)."""
    session.flush()  # the caller's own changes first: they are not lost to the refresh below
    kind = type(record)
    result = session.execute(
        update(kind)
        .where(col(kind.id) == record.id, *when)
        .values(**values)
        .execution_options(synchronize_session=False)  # (in memory, `record` may be stale)
    )
    if getattr(result, "rowcount", 0):
        for name, value in values.items():
            set_committed_value(record, name, value)
        return True
    session.refresh(record, list(reread) or None)
    return False


IN_MOST = 900  # ids in one IN list (SQLite before 3.32 takes at most 999 parameters a statement)


def ids_by(pairs: Iterable[tuple[int, K]]) -> Iterator[tuple[K, list[int]]]:
    """The ids of (id, value) pairs, by value (`IN_MOST` at a time): a batch's rows written with a
    statement per distinct value (`WHERE id IN (...)`), not one per row. A tick's SLOs mostly share
    their values (they were fetched up to the same minute), and each row of an executemany is a
    statement of its own on PostgreSQL (psycopg pipelines them: the server still runs, and the
    driver still handles, each one) and a step of its own on SQLite."""
    found: dict[K, list[int]] = {}
    for slo_id, value in pairs:
        found.setdefault(value, []).append(slo_id)
    for value, ids in found.items():
        for at in range(0, len(ids), IN_MOST):
            yield value, ids[at : at + IN_MOST]


def set_coverages(*, session: Session, rows: Sequence[tuple[int, datetime, datetime]]) -> None:
    """Record what has been fetched for each SLO, (slo_id, covered_from, covered_to): a Core update
    (cheaper than the ORM's unit of work) per distinct range."""
    for (since, until), ids in ids_by((slo_id, (since, until)) for slo_id, since, until in rows):
        session.execute(update(SLOS).where(SLOS.c.id.in_(ids)).values(covered_from=since, covered_to=until))


def record_failure(*, session: Session, slo_id: int, at: datetime, kind: str, why: str) -> None:
    """Mark the SLO as failing (keeping when it started failing) until `clear_failure`."""
    session.execute(
        update(SLOS)
        .where(SLOS.c.id == slo_id)
        .values(failing_since=func.coalesce(SLOS.c.failing_since, at), failure_kind=kind, failure=why)
    )


def clear_failure(*, session: Session, record: SLORecord) -> None:
    if record.failing_since is not None or record.failure is not None:
        record.failing_since, record.failure_kind, record.failure = None, None, None
        session.add(record)


def _counted() -> Any:
    """The rows a person counts as SLOs: each member of a grouped SLO (not its definition), and a
    composite SLO once (not its parts, whose rows point at it as members point at their group)."""
    whole = SLOS.alias("whole")  # an SLO of its own: neither grouped nor a member or part
    singles = select(whole.c.id).where(whole.c.group_by.is_(None), whole.c.group_id.is_(None))
    return SLOS.c.group_by.is_(None) & (SLOS.c.group_id.is_(None) | SLOS.c.group_id.not_in(singles))


def count_slos(*, session: Session) -> int:
    """SLOs evaluated: each member of a grouped SLO counts, its definition does not; a composite SLO
    counts once."""
    return int(session.execute(select(func.count()).select_from(SLOS).where(_counted())).scalar_one())


def failing_by_kind(*, session: Session) -> dict[str, int]:
    """How many SLOs (as `count_slos` counts them) failed their last evaluation, by failure kind."""
    rows = session.execute(
        select(SLOS.c.failure_kind, func.count())
        .where(SLOS.c.failing_since.is_not(None), _counted())
        .group_by(SLOS.c.failure_kind)
    )
    counts: dict[str, int] = {}
    for kind, count in rows:
        counts[kind or "unknown"] = counts.get(kind or "unknown", 0) + int(count)
    return counts


# --- status snapshots ----------------------------------------------------------------------------

SNAPSHOT_RETENTION = timedelta(hours=6)


def add_snapshot(*, session: Session, slo_id: int, status: Status, error: str | None) -> None:
    add_snapshots(session=session, rows=[(slo_id, status, error)])


def add_snapshots(*, session: Session, rows: Sequence[tuple[int, Status, str | None]]) -> None:
    """The evaluations of many SLOs, (slo_id, status, error) each: one batch of inserts."""
    if not rows:
        return
    session.execute(
        insert(SNAPSHOTS),
        [
            {
                "slo_id": slo_id,
                "evaluated_at": status.evaluated_at,
                "sli": status.sli,
                "good": status.good,
                "total": status.total,
                "consumed_ratio": status.consumed_ratio,
                "remaining_ratio": status.remaining_ratio,
                "burn_rates": json.dumps({format_duration(w): b for w, b in status.burn_rates.items()}),
                "exhaustion_at": status.exhaustion_at,
                "state": status.state,
                "coverage_ratio": status.coverage_ratio,
                "error": error,
                "notes": "\n".join(status.warnings) or None,
            }
            for slo_id, status, error in rows
        ],
    )


def prune_snapshots(*, session: Session, now: datetime) -> None:
    """Drop snapshots older than SNAPSHOT_RETENTION, of every SLO at once (once a tick)."""
    session.execute(delete(SNAPSHOTS).where(SNAPSHOTS.c.evaluated_at < now - SNAPSHOT_RETENTION))


def latest_snapshots(*, session: Session) -> list[tuple[SLORecord, SnapshotRecord | None]]:
    """Every SLO with its newest snapshot by evaluation time (None when never evaluated).

    By time, not by id: `check --at` of a past moment writes a later row about an earlier time."""
    newest = (
        select(SNAPSHOTS.c.slo_id, func.max(SNAPSHOTS.c.evaluated_at).label("at"))
        .group_by(SNAPSHOTS.c.slo_id)
        .subquery()
    )
    snapshots: dict[int, SnapshotRecord] = {}
    for s in session.exec(
        select_model(SnapshotRecord)
        .join(
            newest,
            (SnapshotRecord.slo_id == newest.c.slo_id)  # type: ignore[arg-type]
            & (SnapshotRecord.evaluated_at == newest.c.at),
        )
        .order_by(SnapshotRecord.id)  # type: ignore[arg-type]
    ):
        snapshots[s.slo_id] = s  # of two at the same time, the later written
    return [(r, snapshots.get(r.id or 0)) for r in list_slos(session=session, members=True)]


def latest_snapshot(session: Session, slo_id: int) -> SnapshotRecord | None:
    """The newest evaluation of the SLO (a later `check --at` of a past time does not replace it)."""
    return session.exec(
        select_model(SnapshotRecord)
        .where(SnapshotRecord.slo_id == slo_id)
        .order_by(col(SnapshotRecord.evaluated_at).desc(), col(SnapshotRecord.id).desc())
        .limit(1)
    ).first()


def status_of(snapshot: SnapshotRecord | None) -> Status | None:
    """The stored snapshot as the budget arithmetic's Status (burn windows as written)."""
    if snapshot is None:
        return None
    evaluated = utc(snapshot.evaluated_at)
    assert evaluated is not None
    return Status(
        evaluated_at=evaluated,
        sli=snapshot.sli,
        good=snapshot.good,
        total=snapshot.total,
        consumed_ratio=snapshot.consumed_ratio,
        remaining_ratio=snapshot.remaining_ratio,
        burn_rates={parse_duration(w): b for w, b in json.loads(snapshot.burn_rates).items()},
        exhaustion_at=utc(snapshot.exhaustion_at),
        state=snapshot.state,
        coverage_ratio=snapshot.coverage_ratio,
    )
