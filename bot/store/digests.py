"""Weekly digests in the store: each channel's schedule, and which due time was sent already.

Functions over a caller-owned session; the caller commits.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CursorResult, or_, update
from sqlmodel import Session, col, select

from bot.store.models import DigestRecord

SLACK, CATALOGUE = "slack", "catalogue"


def set_schedule(
    *, session: Session, channel: str, schedule: str, origin: str, by: str | None, now: datetime
) -> DigestRecord:
    """Give the channel this schedule (replacing its own). The digest due before `now` counts as
    sent: a new schedule starts with its next due time, not with a digest right away."""
    record = session.get(DigestRecord, channel)
    if record is None:
        record = DigestRecord(channel=channel, schedule=schedule, origin=origin, set_at=now)
    record.schedule, record.origin, record.set_by, record.set_at = schedule, origin, by, now
    record.last_due_at = now
    session.add(record)
    return record


def remove(*, session: Session, channel: str) -> bool:
    record = session.get(DigestRecord, channel)
    if record is None:
        return False
    session.delete(record)
    return True


def all_digests(*, session: Session) -> list[DigestRecord]:
    return list(session.exec(select(DigestRecord).order_by(col(DigestRecord.channel))))


def take(*, session: Session, channel: str, due_at: datetime, holder: str) -> bool:
    """Whether this replica sends the channel's digest due at `due_at`: True for exactly one."""
    result = session.execute(
        update(DigestRecord)
        .where(
            col(DigestRecord.channel) == channel,
            or_(col(DigestRecord.last_due_at).is_(None), col(DigestRecord.last_due_at) < due_at),
        )
        .values(last_due_at=due_at, sent_by=holder)
        .execution_options(synchronize_session=False)
    )
    assert isinstance(result, CursorResult)
    return result.rowcount == 1
