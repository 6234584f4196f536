"""The outbox: calls to Slack and to incident tools, written in the transaction that decided them.

Functions over a caller-owned session; the caller commits. Each worker reads the kinds it delivers.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete
from sqlmodel import Session, col, select

from bot.store.models import OutboxRecord
from bot.store.repo import utc


def enqueue(
    *,
    session: Session,
    kind: str,
    now: datetime,
    alert_id: int | None = None,
    channel: str | None = None,
    payload: dict[str, Any] | None = None,
) -> OutboxRecord:
    record = OutboxRecord(
        kind=kind,
        alert_id=alert_id,
        channel=channel,
        payload=json.dumps(payload or {}),
        next_attempt_at=now,
        created_at=now,
    )
    session.add(record)
    return record


def due(*, session: Session, kinds: Sequence[str], now: datetime, limit: int = 100) -> list[OutboxRecord]:
    """Pending entries of `kinds` in the order they were written; the caller keeps per-alert order."""
    return list(
        session.exec(
            select(OutboxRecord)
            .where(OutboxRecord.status == "pending", col(OutboxRecord.kind).in_(kinds))
            .order_by(col(OutboxRecord.id))
            .limit(limit)
        )
    )


def next_due_at(*, session: Session, kinds: Sequence[str]) -> datetime | None:
    row = session.exec(
        select(OutboxRecord.next_attempt_at)
        .where(OutboxRecord.status == "pending", col(OutboxRecord.kind).in_(kinds))
        .order_by(col(OutboxRecord.next_attempt_at))
    ).first()
    return utc(row)


def pending_count(*, session: Session, kinds: Sequence[str]) -> int:
    query = select(OutboxRecord.id).where(OutboxRecord.status == "pending", col(OutboxRecord.kind).in_(kinds))
    return len(session.exec(query).all())


def purge_done(*, session: Session, kinds: Sequence[str], before: datetime) -> None:
    session.execute(
        delete(OutboxRecord).where(
            col(OutboxRecord.status) == "done",
            col(OutboxRecord.kind).in_(kinds),
            col(OutboxRecord.done_at) < before,
        )
    )
