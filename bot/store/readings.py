"""Daily budget readings: an SLO's budget at its first evaluation of each UTC day, kept for a quarter,
so `slo-bot report` can say how a period moved a rolling window's budget (whose buckets of the
period's start are gone). Functions over a caller-owned session; the caller commits."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlmodel import Session, col, select

from bot.budget import Status
from bot.store.models import BudgetReadingRecord
from bot.store.repo import epoch, utc

RETENTION = timedelta(days=100)  # a quarter's report, and its start
DAY_S = 86_400


def day_of(at: datetime) -> int:
    """The UTC day holding `at`, as the epoch second it begins."""
    return epoch(at) // DAY_S * DAY_S


def is_new_day(previous: datetime | None, now: datetime) -> bool:
    """Whether an evaluation at `now` is the SLO's first of its day, given the end of the data its
    previous one read (`covered_to`): the tick that takes a reading, without a query on the others."""
    return previous is None or day_of(previous) != day_of(now)


def record(*, session: Session, slo_id: int, status: Status) -> None:
    """Keep the status's budget as its day's reading, unless the day has one already."""
    values = {
        "slo_id": slo_id,
        "day_s": day_of(status.evaluated_at),
        "evaluated_at": status.evaluated_at,
        "remaining_ratio": status.remaining_ratio,
    }
    table = BudgetReadingRecord.__table__  # type: ignore[attr-defined]
    # the dialect's own module, imported for the dialect in use (as in bot.store.leases)
    if session.connection().dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql

        session.execute(postgresql.insert(table).values(**values).on_conflict_do_nothing())
    else:
        from sqlalchemy.dialects import sqlite

        session.execute(sqlite.insert(table).values(**values).on_conflict_do_nothing())


def at_or_before(
    *, session: Session, slo_id: int, at: datetime, within: timedelta
) -> BudgetReadingRecord | None:
    """The newest reading taken at or before `at`, no older than `within` before it."""
    return session.exec(
        select(BudgetReadingRecord)
        .where(
            BudgetReadingRecord.slo_id == slo_id,
            col(BudgetReadingRecord.day_s) <= day_of(at),
            col(BudgetReadingRecord.day_s) >= day_of(at - within),
            col(BudgetReadingRecord.evaluated_at) <= at,
            col(BudgetReadingRecord.evaluated_at) >= at - within,
        )
        .order_by(col(BudgetReadingRecord.day_s).desc())
        .limit(1)
    ).first()


def prune(*, session: Session, now: datetime) -> None:
    """Drop the readings older than RETENTION, of every SLO at once (with the snapshots' pruning)."""
    table = BudgetReadingRecord.__table__  # type: ignore[attr-defined]
    session.execute(delete(table).where(table.c.day_s < day_of(now - RETENTION)))


def measured_at(reading: BudgetReadingRecord) -> datetime:
    at = utc(reading.evaluated_at)
    assert at is not None
    return at
