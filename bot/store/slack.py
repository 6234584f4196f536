"""Store side of the Slack surface: silences, subscriptions, alert messages, seen events.

Functions over a caller-owned session; the caller commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, or_, select

from bot.store.models import (
    SilenceRecord,
    SlackEventRecord,
    SlackMessageRecord,
    SLORecord,
    SubscriptionRecord,
)
from bot.store.repo import forget, per_transaction, utc

# --- silences ------------------------------------------------------------------------------------


def silenced_at(*, session: Session, slo_id: int, at: datetime) -> bool:
    """Whether a silence covered the SLO at `at` (ended ones included)."""
    rows = session.exec(
        select(SilenceRecord).where(
            SilenceRecord.slo_id == slo_id, SilenceRecord.created_at <= at, SilenceRecord.until > at
        )
    )
    return any(r.ended_at is None or utc(r.ended_at) > at for r in rows)  # type: ignore[operator]


def active_silence(*, session: Session, slo_id: int, now: datetime) -> SilenceRecord | None:
    return session.exec(
        select(SilenceRecord)
        .where(
            SilenceRecord.slo_id == slo_id,
            col(SilenceRecord.ended_at).is_(None),
            SilenceRecord.until > now,
        )
        .order_by(col(SilenceRecord.until).desc())
    ).first()


def silence(
    *, session: Session, slo_id: int, until: datetime, reason: str, by: str, now: datetime
) -> SilenceRecord:
    record = SilenceRecord(slo_id=slo_id, until=until, reason=reason, created_by=by, created_at=now)
    session.add(record)
    return record


def unsilence(*, session: Session, slo_id: int, by: str, now: datetime) -> int:
    """End every active silence of the SLO; returns how many there were."""
    result = session.execute(
        update(SilenceRecord)
        .where(
            col(SilenceRecord.slo_id) == slo_id,
            col(SilenceRecord.ended_at).is_(None),
            col(SilenceRecord.until) > now,
        )
        .values(ended_at=now, ended_by=by)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


# --- subscriptions -------------------------------------------------------------------------------


def subscribe(*, session: Session, service: str, channel: str, by: str, now: datetime) -> bool:
    """Route the service's alerts to `channel` too; False when it already was."""
    exists = session.exec(
        select(SubscriptionRecord).where(
            SubscriptionRecord.service == service, SubscriptionRecord.channel == channel
        )
    ).first()
    if exists is not None:
        return False
    session.add(SubscriptionRecord(service=service, channel=channel, created_by=by, created_at=now))
    forget(session, _SUBSCRIBED)  # read again, with this one, if the transaction asks
    return True


def subscribed_channels(*, session: Session, service: str) -> list[str]:
    """The channels subscribed to the service, oldest first. Read once a transaction for every
    service (a few rows each): an outage that opens a breach for each of hundreds of SLOs in one
    stored batch asks once, not once a breach."""
    return list(per_transaction(session, _SUBSCRIBED, lambda: _subscriptions(session)).get(service, ()))


def _subscriptions(session: Session) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    rows = session.execute(
        select(SubscriptionRecord.service, SubscriptionRecord.channel).order_by(col(SubscriptionRecord.id))
    )
    for service, channel in rows:
        found.setdefault(service, []).append(channel)
    return found


_SUBSCRIBED = "subscribed_channels"


def services_of_user(*, session: Session, user: str) -> list[str]:
    rows = session.exec(select(SubscriptionRecord).where(SubscriptionRecord.created_by == user))
    return sorted({r.service for r in rows})


# --- alert messages ------------------------------------------------------------------------------


def message_for(*, session: Session, breach_id: int, channel: str) -> SlackMessageRecord:
    found = session.exec(
        select(SlackMessageRecord).where(
            SlackMessageRecord.breach_id == breach_id, SlackMessageRecord.channel == channel
        )
    ).first()
    if found is None:
        found = SlackMessageRecord(breach_id=breach_id, channel=channel)
        session.add(found)
        session.flush()
    return found


def messages_of(*, session: Session, breach_id: int) -> list[SlackMessageRecord]:
    return list(session.exec(select(SlackMessageRecord).where(SlackMessageRecord.breach_id == breach_id)))


# --- Slack retries -------------------------------------------------------------------------------

EVENT_MEMORY = timedelta(hours=1)


def first_sight(*, session: Session, event_id: str, now: datetime) -> bool:
    """True the first time an event id is seen; Slack's retries of it get False."""
    session.execute(delete(SlackEventRecord).where(col(SlackEventRecord.received_at) < now - EVENT_MEMORY))
    session.add(SlackEventRecord(event_id=event_id, received_at=now))
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        return False
    return True


def slo_names(*, session: Session, services: Sequence[str] | None = None) -> list[str]:
    query = select(SLORecord.name).order_by(col(SLORecord.name))
    if services is not None:
        query = query.where(or_(*(SLORecord.service == s for s in services)))
    return list(session.exec(query))
