"""Store side of the incident tools: a breach's incidents per target, and webhook deliveries seen.

Functions over a caller-owned session; the caller commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from bot.domain import SLO, NotificationTarget
from bot.incidents.base import TRIGGER
from bot.store import outbox
from bot.store.models import BreachRecord, IncidentRecord, WebhookEventRecord
from bot.store.repo import update_if

# a webhook delivery older than this is refused, and its id remembered this long
WEBHOOK_MEMORY = timedelta(hours=24)


def incidents_of(*, session: Session, breach_id: int) -> list[IncidentRecord]:
    """The breach's incidents, in the order they were opened."""
    return list(
        session.exec(
            select(IncidentRecord)
            .where(IncidentRecord.breach_id == breach_id)
            .order_by(col(IncidentRecord.id))
        )
    )


def add_incident(
    *,
    session: Session,
    breach_id: int,
    target: str,
    kind: str,
    dedup_key: str,
    now: datetime,
    severity: str | None = None,
    declared_by: str | None = None,
) -> IncidentRecord:
    record = IncidentRecord(
        breach_id=breach_id,
        target=target,
        kind=kind,
        dedup_key=dedup_key,
        severity=severity,
        declared_by=declared_by,
        created_at=now,
        updated_at=now,
    )
    session.add(record)
    session.flush()
    return record


def incident_of(*, session: Session, breach_id: int, target: str) -> IncidentRecord | None:
    return session.exec(
        select(IncidentRecord).where(IncidentRecord.breach_id == breach_id, IncidentRecord.target == target)
    ).first()


def move_state(
    *, session: Session, incident: IncidentRecord, expected: str, state: str, now: datetime
) -> bool:
    """Set the incident's state to `state` if it is still `expected`, the state read before a call to
    the tool: its webhook may have told a newer one while the call was in flight, and the tool's own
    word wins. True when the state was set; otherwise the incident shows what the tool said."""
    return update_if(
        session=session,
        record=incident,
        when=[col(IncidentRecord.state) == expected],
        values={"state": state, "updated_at": now},
    )


def adopt_external_id(*, session: Session, incident: IncidentRecord, reference: str) -> bool:
    """Take `reference` (a trigger call's answer) as the tool's id for the incident, unless one is
    known by now: the tool's webhook may have named its own incident while the call was in flight.
    True when taken; otherwise the incident shows the id the webhook gave (nothing else reread)."""
    return update_if(
        session=session,
        record=incident,
        when=[col(IncidentRecord.external_id).is_(None)],
        values={"external_id": reference},
        reread=["external_id"],
    )


def by_dedup_key(*, session: Session, dedup_key: str, kind: str) -> IncidentRecord | None:
    """The incident opened in a tool of `kind` under `dedup_key`: one per breach. (A key from before
    breaches, one per SLO and severity, was reused by every firing: the newest is the one.)"""
    return session.exec(
        select(IncidentRecord)
        .where(IncidentRecord.dedup_key == dedup_key, IncidentRecord.kind == kind)
        .order_by(col(IncidentRecord.id).desc())
    ).first()


def by_external_id(*, session: Session, external_id: str, kind: str) -> IncidentRecord | None:
    return session.exec(
        select(IncidentRecord)
        .where(IncidentRecord.external_id == external_id, IncidentRecord.kind == kind)
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


# --- calls to the tools, through the outbox ----------------------------------------------------

KIND = "incident"  # outbox kind; the entry's `channel` is the target's name (order is kept per target)
VENDORS = {"pagerduty": "PagerDuty", "opsgenie": "Opsgenie", "squadcast": "Squadcast", "webhook": "webhook"}


def dedup_key(slo_name: str, breach_id: int) -> str:
    """One per breach: a late event about an earlier breach can never touch a newer one."""
    return f"slo-bot/{slo_name}/{breach_id}"


def vendor(kind: str) -> str:
    return VENDORS.get(kind, kind)


def queue_call(
    session: Session,
    breach: BreachRecord,
    incident: IncidentRecord,
    action: str,
    now: datetime,
    actor: str | None = None,
    note: str = "",
) -> None:
    outbox.enqueue(
        session=session,
        kind=KIND,
        breach_id=breach.id,
        channel=incident.target,
        payload={"action": action, "actor": actor, "note": note},
        now=now,
    )


def open_incidents(
    session: Session,
    breach: BreachRecord,
    slo: SLO,
    targets: Sequence[NotificationTarget],
    now: datetime,
    declared_by: str | None = None,
) -> list[IncidentRecord]:
    """Open the breach's incident in each target it is not open in yet; returns those opened."""
    assert breach.id is not None
    have = {i.target for i in incidents_of(session=session, breach_id=breach.id)}
    opened = []
    for target in targets:
        if target.name in have:
            continue
        incident = add_incident(
            session=session,
            breach_id=breach.id,
            target=target.name,
            kind=target.target.lower(),
            dedup_key=dedup_key(slo.name, breach.id),
            now=now,
            severity=breach.severity,
            declared_by=declared_by,
        )
        queue_call(session, breach, incident, TRIGGER, now, actor=declared_by)
        opened.append(incident)
    return opened


def queue_upstream(
    session: Session,
    breach: BreachRecord,
    action: str,
    now: datetime,
    actor: str | None = None,
    note: str = "",
    exclude: str | None = None,
) -> int:
    """Tell every tool the breach's incident is open in (but `exclude`, where it came from) about
    `action`. Returns how many calls were queued."""
    assert breach.id is not None
    queued = 0
    for incident in incidents_of(session=session, breach_id=breach.id):
        if incident.target == exclude or incident.state == "resolved":
            continue  # where it came from, or closed in the tool already
        queue_call(session, breach, incident, action, now, actor, note)
        queued += 1
    return queued
