"""Replicas share the work through the database: per-tick leases on SLOs, once-per-fleet jobs.

A tick is an interval boundary every replica agrees on. A replica takes SLOs not yet evaluated in
that tick a batch at a time (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so two replicas never take the
same row), and marks each done in the transaction that stores its evaluation: whatever happens
between, the tick evaluates the SLO once. A lease that is neither done nor renewed expires, and the
SLO is free again. On SQLite (one process) the same statements run without the row locks.
Functions over a caller-owned session; the caller commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import CursorResult, and_, exists, func, or_, select, update
from sqlmodel import Session, col

from bot.store.models import FleetJobRecord, LeaseRecord, OutboxRecord, SLORecord


def _insert(session: Session, table: type[LeaseRecord] | type[FleetJobRecord]) -> object:
    """INSERT ... ON CONFLICT DO NOTHING in the session's dialect (replicas race to add the same row)."""
    # the dialect's own module, imported for the dialect in use: PostgreSQL's costs SQLite a 50th of a second
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table)
    from sqlalchemy.dialects import sqlite

    return sqlite.insert(table)


def add_missing(*, session: Session) -> None:
    """Give every SLO its lease row (new SLOs since the last tick; any replica may add them). A
    grouped SLO's members have none: they are evaluated with their definition, under its lease."""
    missing = select(col(SLORecord.id)).where(
        col(SLORecord.group_id).is_(None),
        ~exists().where(col(LeaseRecord.slo_id) == col(SLORecord.id)),
    )
    insert = _insert(session, LeaseRecord)
    session.execute(insert.from_select(["slo_id"], missing).on_conflict_do_nothing())  # type: ignore[attr-defined]


def _claimable(tick: datetime, now: datetime) -> object:
    return or_(
        col(LeaseRecord.tick).is_(None),  # never taken, or handed back
        and_(col(LeaseRecord.done_at).is_not(None), col(LeaseRecord.tick) < tick),  # done in an earlier tick
        and_(col(LeaseRecord.done_at).is_(None), col(LeaseRecord.expires_at) < now),  # its holder went away
    )


def claim(
    *,
    session: Session,
    holder: str,
    tick: datetime,
    now: datetime,
    ttl: timedelta,
    limit: int,
    after: int = 0,
) -> list[int]:
    """Take up to `limit` SLOs not evaluated in `tick` and not held by a live lease, of ids above
    `after` (where the replica's last batch ended: the rows before it are mostly taken, and a
    tick's claims each scanning them all cost as much as the tick's queries); their ids."""
    free = (
        select(col(LeaseRecord.slo_id))
        .where(col(LeaseRecord.slo_id) > after, _claimable(tick, now))  # type: ignore[arg-type]
        # members' rows left by a version that gave them leases: taken alone, a member was
        # evaluated a second time in the tick, with queries of its own
        .where(
            col(LeaseRecord.slo_id).in_(select(col(SLORecord.id)).where(col(SLORecord.group_id).is_(None)))
        )
        .order_by(col(LeaseRecord.slo_id))
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    taken = session.execute(
        update(LeaseRecord)
        .where(col(LeaseRecord.slo_id).in_(free.scalar_subquery()))
        .values(holder=holder, tick=tick, expires_at=now + ttl, done_at=None)
        .returning(col(LeaseRecord.slo_id))
        .execution_options(synchronize_session=False)  # (no lease row is in the session)
    )
    return sorted(int(slo_id) for slo_id in taken.scalars())


def renew(*, session: Session, holder: str, tick: datetime, until: datetime) -> None:
    """Keep the leases of `tick` this replica is still working on."""
    session.execute(
        update(LeaseRecord)
        .where(
            col(LeaseRecord.holder) == holder,
            col(LeaseRecord.tick) == tick,
            col(LeaseRecord.done_at).is_(None),
        )
        .values(expires_at=until)
    )


def complete(*, session: Session, slo_id: int, holder: str, tick: datetime, now: datetime) -> bool:
    """Mark the SLO evaluated in `tick`; False when the lease is no longer this replica's (it expired
    and another replica took it): the caller then drops its evaluation."""
    return slo_id in complete_many(session=session, slo_ids=[slo_id], holder=holder, tick=tick, now=now)


def complete_many(
    *, session: Session, slo_ids: Sequence[int], holder: str, tick: datetime, now: datetime
) -> set[int]:
    """`complete` of many SLOs in one statement: those whose lease was still this replica's."""
    if not slo_ids:
        return set()
    rows = session.execute(
        update(LeaseRecord)
        .where(
            col(LeaseRecord.slo_id).in_(slo_ids),
            col(LeaseRecord.holder) == holder,
            col(LeaseRecord.tick) == tick,
            col(LeaseRecord.done_at).is_(None),
        )
        .values(done_at=now)
        .returning(col(LeaseRecord.slo_id))
        .execution_options(synchronize_session=False)  # (no lease row is in the session)
    )
    return {int(slo_id) for (slo_id,) in rows}


def hand_back(*, session: Session, slo_ids: Sequence[int], holder: str, tick: datetime) -> None:
    """Free leases taken but not started (the replica is stopping): another replica may take them."""
    if not slo_ids:
        return
    session.execute(
        update(LeaseRecord)
        .where(
            col(LeaseRecord.slo_id).in_(slo_ids),
            col(LeaseRecord.holder) == holder,
            col(LeaseRecord.tick) == tick,
            col(LeaseRecord.done_at).is_(None),
        )
        .values(holder=None, tick=None, expires_at=None)
    )


def others_unfinished(*, session: Session, holder: str, tick: datetime) -> int:
    """SLOs of `tick` other replicas hold and have not finished: handed back or expired, they are
    free again, so a replica with nothing left to take waits for them until its tick ends."""
    count = session.execute(
        select(func.count()).where(
            col(LeaseRecord.tick) == tick,
            col(LeaseRecord.done_at).is_(None),
            col(LeaseRecord.holder) != holder,
        )
    ).scalar_one()
    return int(count)


def holders(*, session: Session) -> set[str]:
    """Every replica name that holds a lease or an outbox claim now."""
    leased = select(col(LeaseRecord.holder)).where(
        col(LeaseRecord.done_at).is_(None), col(LeaseRecord.holder).is_not(None)
    )
    claimed = select(col(OutboxRecord.claimed_by)).where(col(OutboxRecord.claimed_by).is_not(None))
    return {str(name) for name in session.scalars(leased.union(claimed))}


def release(*, session: Session, holder: str) -> int:
    """Free the leases and outbox claims `holder` left (a process that is gone): its SLOs and entries
    go at once instead of when the leases expire. Returns how many were freed."""
    freed = 0
    for statement in (
        update(LeaseRecord)
        .where(col(LeaseRecord.done_at).is_(None), col(LeaseRecord.holder) == holder)
        .values(holder=None, tick=None, expires_at=None),
        update(OutboxRecord)
        .where(col(OutboxRecord.claimed_by) == holder)
        .values(claimed_by=None, claimed_until=None),
    ):
        result = session.execute(statement)
        assert isinstance(result, CursorResult)
        freed += result.rowcount
    return freed


def claim_job(*, session: Session, name: str, holder: str, now: datetime, every: timedelta) -> bool:
    """Whether this replica runs the fleet's job `name` now: True for exactly one replica per `every`."""
    insert = _insert(session, FleetJobRecord)
    session.execute(insert.values(name=name).on_conflict_do_nothing())  # type: ignore[attr-defined]
    result = session.execute(
        update(FleetJobRecord)
        .where(
            col(FleetJobRecord.name) == name,
            or_(col(FleetJobRecord.last_run_at).is_(None), col(FleetJobRecord.last_run_at) <= now - every),
        )
        .values(last_run_at=now, holder=holder)
    )
    assert isinstance(result, CursorResult)
    return result.rowcount == 1
