"""Alert signals in the store: open signals per SLO and key, and the event trail of every transition.
(What people see and act on is the breach they belong to: `bot.store.breaches`.)

Functions over a caller-owned session; the caller commits (with the tick's buckets: one transaction).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime

from sqlalchemy import exists
from sqlalchemy.orm import defer
from sqlmodel import Session, col, select

from bot.alerting import FIRING, PENDING, RESOLVED, OpenAlert, Transition
from bot.store.models import AlertEventRecord, AlertRecord, SLORecord
from bot.store.repo import utc

OPEN_STATES = (PENDING, FIRING)


def open_alerts_many(*, session: Session, slo_ids: Sequence[int]) -> dict[int, dict[str, AlertRecord]]:
    """The open alerts of each of the SLOs by key (an SLO with none is left out): one query."""
    if not slo_ids:
        return {}
    rows = session.exec(
        select(AlertRecord).where(
            col(AlertRecord.slo_id).in_(slo_ids), col(AlertRecord.state).in_(OPEN_STATES)
        )
    )
    found: dict[int, dict[str, AlertRecord]] = {}
    for r in rows:
        found.setdefault(r.slo_id, {})[r.key] = r
    return found


def lock_slos(*, session: Session, slo_ids: Sequence[int]) -> dict[int, tuple[SLORecord, bool]]:
    """The SLOs' rows, locked until the transaction ends (one evaluation of an SLO at a time,
    whoever runs it), each with whether it has open signals (so the many without need no second
    read); one statement, locking in id order (two processes locking some of the same SLOs wait
    for each other, never deadlock). An SLO removed since is left out."""
    if not slo_ids:
        return {}
    has_open = exists().where(
        col(AlertRecord.slo_id) == col(SLORecord.id), col(AlertRecord.state).in_(OPEN_STATES)
    )
    rows = session.exec(
        select(SLORecord, has_open.label("has_open"))
        .where(col(SLORecord.id).in_(slo_ids))
        .order_by(col(SLORecord.id))
        .with_for_update(of=SLORecord)
        # (an evaluation plans from the catalogue, not from the row's documents: a member's repeat
        # its definition's, and a batch of a hundred would read them all; read when asked for, as
        # when a composite's new part copies its composite's)
        .options(defer(SLORecord.documents))  # type: ignore[arg-type]
    )
    return {record.id: (record, bool(found)) for record, found in rows if record.id is not None}


def as_open(record: AlertRecord | None) -> OpenAlert | None:
    if record is None:
        return None
    since = utc(record.since)
    assert since is not None
    return OpenAlert(record.key, record.state, since)


def record_step(
    *,
    session: Session,
    slo_id: int,
    current: AlertRecord | None,
    after: OpenAlert | None,
    transition: Transition | None,
    at: datetime,
) -> AlertRecord | None:
    """Persist what `bot.alerting.step` decided; returns the alert the transition belongs to. The
    caller records the transition (`add_event`, once the alert has an id: one flush for all of an
    SLO's alerts, not one each)."""
    if after is None and current is None:
        return None
    if after is None:
        assert current is not None
        if current.state == PENDING:
            session.delete(current)  # never announced
            return None
        current.state = RESOLVED
        current.resolved_at = at
    elif current is None:
        current = AlertRecord(slo_id=slo_id, key=after.key, state=after.state, since=after.since)
    elif current.state != after.state:
        current.state = after.state
        current.since = after.since
    elif transition is None:
        return current  # nothing changed
    if transition is not None:
        if transition.event == FIRING:
            current.fired_at = at
        current.burn_rates = json.dumps(dict(transition.burn_rates))
        current.reason = transition.reason
    session.add(current)
    return current


def add_event(
    *,
    session: Session,
    alert_id: int,
    at: datetime,
    event: str,
    actor: str | None = None,
    burn_rates: Mapping[str, float | None] | None = None,
    detail: str = "",
) -> None:
    session.add(
        AlertEventRecord(
            alert_id=alert_id,
            at=at,
            event=event,
            actor=actor,
            burn_rates=json.dumps(dict(burn_rates or {})),
            detail=detail,
        )
    )
