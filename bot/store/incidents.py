"""Store side of the incident tools: an alert's incidents per target, and webhook deliveries seen.

Functions over a caller-owned session; the caller commits.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from bot.store.models import IncidentRecord, WebhookEventRecord

# a webhook delivery older than this is refused, and its id remembered this long
WEBHOOK_MEMORY = timedelta(hours=24)


def incidents_of(*, session: Session, alert_id: int) -> list[IncidentRecord]:
    """The alert's incidents, in the order they were opened."""
    return list(
        session.exec(
            select(IncidentRecord).where(IncidentRecord.alert_id == alert_id).order_by(col(IncidentRecord.id))
        )
    )


def add_incident(
    *,
    session: Session,
    alert_id: int,
    target: str,
    kind: str,
    dedup_key: str,
    now: datetime,
    declared_by: str | None = None,
) -> IncidentRecord:
    record = IncidentRecord(
        alert_id=alert_id,
        target=target,
        kind=kind,
        dedup_key=dedup_key,
        declared_by=declared_by,
        created_at=now,
        updated_at=now,
    )
    session.add(record)
    session.flush()
    return record


def by_dedup_key(*, session: Session, dedup_key: str, kind: str) -> IncidentRecord | None:
    """The newest incident opened in a tool of `kind` under `dedup_key` (a key is reused by every
    firing of the same SLO and severity; the tool's webhook speaks of the latest)."""
    return session.exec(
        select(IncidentRecord)
        .where(IncidentRecord.dedup_key == dedup_key, IncidentRecord.kind == kind)
        .order_by(col(IncidentRecord.id).desc())
    ).first()


def first_webhook_sight(*, session: Session, source: str, event_id: str, now: datetime) -> bool:
    """True the first time a tool's delivery id is seen; a retry or a replay of it gets False."""
    session.execute(
        delete(WebhookEventRecord).where(col(WebhookEventRecord.received_at) < now - WEBHOOK_MEMORY)
    )
    try:
        with session.begin_nested():  # a duplicate rolls back to here, not the caller's transaction
            session.add(WebhookEventRecord(source=source, event_id=event_id[:128], received_at=now))
    except IntegrityError:
        return False
    return True
