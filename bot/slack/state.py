"""Reading what the Slack surface shows from the store: status lines, one SLO's detail, an alert.

Three queries for any number of SLOs (snapshots, firing alerts, silences): `/slo status` must
answer well inside Slack's 3 seconds with a thousand SLOs stored.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from bot.alerting import FIRING
from bot.budget import Status
from bot.domain import SLO
from bot.durations import parse_duration
from bot.jobs import slo_of
from bot.slack.blocks import StatusLine
from bot.store import repo
from bot.store.models import AlertRecord, SilenceRecord, SLORecord, SnapshotRecord


def _firing(session: Session) -> dict[int, list[AlertRecord]]:
    found: dict[int, list[AlertRecord]] = {}
    for alert in session.exec(select(AlertRecord).where(AlertRecord.state == FIRING)):
        found.setdefault(alert.slo_id, []).append(alert)
    return found


def _silences(session: Session, now: datetime) -> dict[int, SilenceRecord]:
    rows = session.exec(
        select(SilenceRecord).where(col(SilenceRecord.ended_at).is_(None), SilenceRecord.until > now)
    )
    return {r.slo_id: r for r in rows}


def _burn(snapshot: SnapshotRecord | None) -> float | None:
    if snapshot is None:
        return None
    value = json.loads(snapshot.burn_rates).get("1h")
    return None if value is None else float(value)


def status_lines(session: Session, now: datetime, services: Sequence[str] | None = None) -> list[StatusLine]:
    """Every SLO (or those of `services`), the least budget left first, no data last."""
    firing = _firing(session)
    silences = _silences(session, now)
    lines = []
    for record, snapshot in repo.latest_snapshots(session=session):
        if services is not None and record.service not in services:
            continue
        silence = silences.get(record.id or 0)
        lines.append(
            StatusLine(
                name=record.name,
                service=record.service,
                objective=None,
                remaining_ratio=snapshot.remaining_ratio if snapshot else None,
                burn=_burn(snapshot),
                state=snapshot.state if snapshot else "no_data",
                alerts=tuple(a.key for a in firing.get(record.id or 0, [])),
                silenced_until=repo.utc(silence.until) if silence else None,
            )
        )
    return sorted(lines, key=lambda s: (s.remaining_ratio is None, s.remaining_ratio or 0.0, s.name))


@dataclass(frozen=True)
class Detail:
    record: SLORecord
    slo: SLO | None
    snapshot: SnapshotRecord | None
    alerts: tuple[AlertRecord, ...]
    silence: SilenceRecord | None


def detail(session: Session, name: str, now: datetime) -> Detail | None:
    record = repo.get_slo(session=session, name=name)
    if record is None or record.id is None:
        return None
    try:
        slo: SLO | None = slo_of(record)
    except Exception:  # an unset secret: show what is stored all the same
        slo = None
    snapshot = latest_snapshot(session, record.id)
    alerts = tuple(_firing(session).get(record.id, []))
    return Detail(record, slo, snapshot, alerts, _silences(session, now).get(record.id))


def alert_with_slo(session: Session, alert_id: int) -> tuple[AlertRecord, SLORecord] | None:
    alert = session.get(AlertRecord, alert_id)
    if alert is None:
        return None
    record = session.get(SLORecord, alert.slo_id)
    return None if record is None else (alert, record)


def firing_alerts_of(session: Session, slo_id: int) -> list[AlertRecord]:
    return list(
        session.exec(select(AlertRecord).where(AlertRecord.slo_id == slo_id, AlertRecord.state == FIRING))
    )


def latest_snapshot(session: Session, slo_id: int) -> SnapshotRecord | None:
    return session.exec(
        select(SnapshotRecord).where(SnapshotRecord.slo_id == slo_id).order_by(col(SnapshotRecord.id).desc())
    ).first()


def status_of(snapshot: SnapshotRecord | None) -> Status | None:
    """The stored snapshot as the budget arithmetic's Status (burn windows as written)."""
    if snapshot is None:
        return None
    evaluated = repo.utc(snapshot.evaluated_at)
    assert evaluated is not None
    return Status(
        evaluated_at=evaluated,
        sli=snapshot.sli,
        good=snapshot.good,
        total=snapshot.total,
        consumed_ratio=snapshot.consumed_ratio,
        remaining_ratio=snapshot.remaining_ratio,
        burn_rates={parse_duration(w): b for w, b in json.loads(snapshot.burn_rates).items()},
        exhaustion_at=repo.utc(snapshot.exhaustion_at),
        state=snapshot.state,
        coverage_ratio=snapshot.coverage_ratio,
    )
