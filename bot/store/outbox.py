"""The outbox: calls to Slack and to incident tools, written in the transaction that decided them.

Functions over a caller-owned session; the caller commits. Each worker reads the kinds it delivers.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, CursorResult, delete, exists, func, or_, update
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from bot.store.models import OutboxRecord
from bot.store.repo import utc


def enqueue(
    *,
    session: Session,
    kind: str,
    now: datetime,
    breach_id: int | None = None,
    channel: str | None = None,
    payload: dict[str, Any] | None = None,
) -> OutboxRecord:
    record = OutboxRecord(
        kind=kind,
        breach_id=breach_id,
        channel=channel,
        payload=json.dumps(payload or {}),
        next_attempt_at=now,
        created_at=now,
    )
    session.add(record)
    return record


def due(
    *,
    session: Session,
    kinds: Sequence[str],
    now: datetime,
    paused: Sequence[str] = (),
    limit: int = 100,
) -> list[OutboxRecord]:
    """Entries of `kinds` that may go now, the longest due first: the first pending entry of each
    alert and destination (their order is kept), when it is due and its destination (a channel, an
    incident tool) is not in `paused`. Entries that wait (a silence, a backoff, a Retry-After) are
    not read at all, so however many there are, a due entry of another destination is in the batch.
    `ix_outbox_due` (status, next_attempt_at) serves the range and the order."""
    query = (
        select(OutboxRecord)
        .where(
            OutboxRecord.status == "pending",
            col(OutboxRecord.kind).in_(kinds),
            col(OutboxRecord.next_attempt_at) <= now,
            _first_of_its_alert_and_destination(kinds),
            _unclaimed(now),
        )
        .order_by(col(OutboxRecord.next_attempt_at), col(OutboxRecord.id))
        .limit(limit)
    )
    if paused:
        query = query.where(
            or_(col(OutboxRecord.channel).is_(None), col(OutboxRecord.channel).not_in(paused))
        )
    return list(session.exec(query))


def _unclaimed(now: datetime) -> ColumnElement[bool]:
    """No replica is delivering it (or the one that was has not renewed its claim in time)."""
    return or_(col(OutboxRecord.claimed_until).is_(None), col(OutboxRecord.claimed_until) < now)


def claim(*, session: Session, entry_id: int, holder: str, now: datetime, ttl: timedelta) -> bool:
    """Take the entry for this replica to deliver: True for one replica at a time, while the entry
    is pending. A claim that outlives its `ttl` (the replica died mid-call) can be taken again; the
    delivery then checks whether the call went through (`in_flight`) before making it again."""
    result = session.execute(
        update(OutboxRecord)
        .where(col(OutboxRecord.id) == entry_id, col(OutboxRecord.status) == "pending", _unclaimed(now))
        .values(claimed_by=holder, claimed_until=now + ttl)
    )
    assert isinstance(result, CursorResult)
    return result.rowcount == 1


def release(*, session: Session, entry_id: int, holder: str) -> None:
    session.execute(
        update(OutboxRecord)
        .where(col(OutboxRecord.id) == entry_id, col(OutboxRecord.claimed_by) == holder)
        .values(claimed_by=None, claimed_until=None)
    )


def next_due_at(*, session: Session, kinds: Sequence[str], paused: Sequence[str] = ()) -> datetime | None:
    """When the next entry may go (ignoring `paused` destinations): an entry queued behind a waiting
    one of its alert and destination goes after it, so only the first of each counts."""
    query = select(func.min(OutboxRecord.next_attempt_at)).where(
        OutboxRecord.status == "pending",
        col(OutboxRecord.kind).in_(kinds),
        _first_of_its_alert_and_destination(kinds),
    )
    if paused:
        query = query.where(
            or_(col(OutboxRecord.channel).is_(None), col(OutboxRecord.channel).not_in(paused))
        )
    return utc(session.exec(query).first())


def _first_of_its_alert_and_destination(kinds: Sequence[str]) -> ColumnElement[bool]:
    """No earlier pending entry of the same alert to the same destination (an entry of no alert
    stands alone)."""
    earlier = aliased(OutboxRecord)
    return ~exists().where(
        col(earlier.status) == "pending",
        col(earlier.kind).in_(kinds),
        col(earlier.breach_id) == col(OutboxRecord.breach_id),
        func.coalesce(earlier.channel, "") == func.coalesce(OutboxRecord.channel, ""),
        col(earlier.id) < col(OutboxRecord.id),
    )


def pending_count(*, session: Session, kinds: Sequence[str]) -> int:
    query = select(func.count()).where(OutboxRecord.status == "pending", col(OutboxRecord.kind).in_(kinds))
    return int(session.exec(query).one())  # counted by the database: a long queue is not read whole


def pending_summary(*, session: Session, kinds: Sequence[str]) -> tuple[int, datetime | None]:
    """How many entries of `kinds` wait for delivery, and when the oldest of them was queued."""
    query = select(func.count(), func.min(OutboxRecord.created_at)).where(
        OutboxRecord.status == "pending", col(OutboxRecord.kind).in_(kinds)
    )
    count, oldest = session.exec(query).one()
    return int(count), utc(oldest)


def purge_done(*, session: Session, kinds: Sequence[str], before: datetime) -> None:
    session.execute(
        delete(OutboxRecord).where(
            col(OutboxRecord.status) == "done",
            col(OutboxRecord.kind).in_(kinds),
            col(OutboxRecord.done_at) < before,
        )
    )
