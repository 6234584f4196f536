"""Reading what the Slack surface shows from the store: status lines, one SLO's detail.

Three queries for any number of SLOs (snapshots, open breaches, silences): `/slo status` must
answer well inside Slack's 3 seconds with a thousand SLOs stored.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from bot import groups
from bot.alerting import FIRING
from bot.catalogue.stored import slo_of
from bot.domain import SLO
from bot.messages import headline
from bot.slack.blocks import StatusLine
from bot.store import repo
from bot.store.models import (
    AlertEventRecord,
    BreachEventRecord,
    BreachRecord,
    SilenceRecord,
    SLORecord,
    SnapshotRecord,
)


def _firing(session: Session) -> dict[int, list[BreachRecord]]:
    """Open breaches by SLO, oldest first."""
    found: dict[int, list[BreachRecord]] = {}
    query = select(BreachRecord).where(BreachRecord.state == FIRING).order_by(col(BreachRecord.id))
    for breach in session.exec(query):
        found.setdefault(breach.slo_id, []).append(breach)
    return found


def _silences(session: Session, now: datetime) -> dict[int, SilenceRecord]:
    rows = session.exec(
        select(SilenceRecord).where(col(SilenceRecord.ended_at).is_(None), SilenceRecord.until > now)
    )
    return {r.slo_id: r for r in rows}


def _newest_snapshot_id() -> Any:
    """The id of the SLO's newest snapshot, as a correlated subquery: one index seek per SLO on
    (slo_id, evaluated_at), where grouping the whole table reads every snapshot of six hours."""
    snapshots = SnapshotRecord.__table__.c  # type: ignore[attr-defined]
    return (
        sa_select(snapshots.id)
        .where(snapshots.slo_id == SLORecord.id)
        .order_by(snapshots.evaluated_at.desc(), snapshots.id.desc())
        .limit(1)
        .correlate(SLORecord)
        .scalar_subquery()
    )


def status_lines(session: Session, now: datetime, services: Sequence[str] | None = None) -> list[StatusLine]:
    """Every SLO (or those of `services`), the least budget left first, no data last.

    Only the columns a line shows are read (an SLO row also holds its whole definition)."""
    firing = _firing(session)
    silences = _silences(session, now)
    snapshots = SnapshotRecord.__table__.c  # type: ignore[attr-defined]
    slos = SLORecord.__table__.c  # type: ignore[attr-defined]
    query = sa_select(
        slos.id,
        slos.name,
        slos.service,
        snapshots.remaining_ratio,
        snapshots.burn_rates,
        snapshots.state,
        slos.failing_since,
        slos.failure,
        slos.group_id,
    ).outerjoin(SnapshotRecord.__table__, snapshots.id == _newest_snapshot_id())  # type: ignore[attr-defined]
    if services is not None:
        query = query.where(slos.service.in_(list(services)))
    grouped: dict[str, str] = {
        name: labels
        for name, labels in session.connection().execute(
            sa_select(slos.name, slos.group_by).where(slos.group_by.is_not(None))
        )
    }
    lines = []
    for (
        slo_id,
        name,
        service,
        remaining,
        burn_rates,
        state,
        failing_since,
        failure,
        group_id,
    ) in session.connection().execute(query):
        if group_id is not None and groups.definition_of(name) not in grouped:
            continue  # a composite SLO's part: `/slo show` lists the parts under their composite
        silence = silences.get(slo_id)
        burn = json.loads(burn_rates).get("1h") if burn_rates else None
        if name in grouped:  # a grouped SLO: its members stand for it (`fold`) once it has any
            labels = tuple(grouped[name].split(","))
            lines.append(
                StatusLine(
                    name=name,
                    service=service,
                    objective=None,
                    remaining_ratio=None,
                    burn=None,
                    state="no_data",
                    failing_since=repo.utc(failing_since),
                    failure=failure,
                    group_by=labels,
                    folded=groups.summary(labels, []),
                )
            )
            continue
        lines.append(
            StatusLine(
                name=name,
                service=service,
                objective=None,
                remaining_ratio=remaining,
                burn=None if burn is None else float(burn),
                state=state or "no_data",
                alerts=tuple(headline(b.kind, b.severity).lower() for b in firing.get(slo_id, [])),
                silenced_until=repo.utc(silence.until) if silence else None,
                failing_since=repo.utc(failing_since),
                failure=failure,
                group=None if group_id is None else groups.definition_of(name),
                group_by=()
                if group_id is None
                else tuple(grouped.get(groups.definition_of(name), "member").split(",")),
            )
        )
    return sorted(lines, key=lambda s: (s.remaining_ratio is None, s.remaining_ratio or 0.0, s.name))


def fold(lines: Sequence[StatusLine]) -> list[StatusLine]:
    """Each grouped SLO's members as one line, in the place of its worst member: "checkout-latency
    (checkout) — 12 routes: worst /pay 43 % left, /cart 71 % left"; other lines as they are."""
    members: dict[str, list[StatusLine]] = {}
    for line in lines:
        if line.group is not None:
            members.setdefault(line.group, []).append(line)
    grouped = set(members)
    out: list[StatusLine] = []
    for line in lines:
        if line.group is None:
            if line.folded is None or line.name not in grouped:  # a group with no member yet
                out.append(line)
            continue
        group = members.pop(line.group, None)
        if group is None:  # folded already, at its worst member
            continue
        worst = group[0]  # `lines` come least budget left first
        alerts = tuple(dict.fromkeys(a for m in group for a in m.alerts))
        failing = [m for m in group if m.failing_since is not None]
        out.append(
            replace(
                worst,
                name=line.group,
                alerts=alerts,
                silenced_until=None,
                failing_since=failing[0].failing_since if failing else None,
                failure=failing[0].failure if failing else None,
                group=None,
                folded=groups.summary(worst.group_by, [(m.name, m.remaining_ratio) for m in group]),
            )
        )
    return out


class StatusBoard:
    """Every SLO's status line, kept between requests: a burst of `/slo status` with a thousand SLOs
    must not sort them all once per request.

    Recomputed when a person's action or an alert changed anything (the key below), when a silence
    ran out, and otherwise at most once a second while evaluations write new snapshots.
    """

    def __init__(self, snapshot_delay: timedelta = timedelta(seconds=1)) -> None:
        self.snapshot_delay = snapshot_delay
        self._lock = threading.Lock()
        self._key: tuple[object, ...] | None = None
        self._snapshot: object = None
        self._at: datetime | None = None
        self._lines: list[StatusLine] = []

    def lines(
        self, session: Session, now: datetime, services: Sequence[str] | None = None
    ) -> list[StatusLine]:
        key, snapshot = _versions(session, now)
        with self._lock:  # one computes, the others of a burst wait for it and reuse it
            age = None if self._at is None else now - self._at
            stale = (
                key != self._key
                or age is None
                or age < timedelta(0)
                or (snapshot != self._snapshot and age >= self.snapshot_delay)
            )
            if stale:
                self._lines = status_lines(session, now)
                self._key, self._snapshot, self._at = key, snapshot, now
            lines = self._lines
        return lines if services is None else [line for line in lines if line.service in services]


def _versions(session: Session, now: datetime) -> tuple[tuple[object, ...], object]:
    """(what people and alerts changed, the newest snapshot): a few index lookups."""
    events, breach_events, silences, slos, snapshots = (
        AlertEventRecord.__table__.c,  # type: ignore[attr-defined]
        BreachEventRecord.__table__.c,  # type: ignore[attr-defined]
        SilenceRecord.__table__.c,  # type: ignore[attr-defined]
        SLORecord.__table__.c,  # type: ignore[attr-defined]
        SnapshotRecord.__table__.c,  # type: ignore[attr-defined]
    )
    active = silences.ended_at.is_(None) & (silences.until > now)
    row = (
        session.connection()
        .execute(
            sa_select(
                sa_select(func.max(events.id)).scalar_subquery(),  # signals fired, resolved
                sa_select(func.max(breach_events.id)).scalar_subquery(),  # breaches moved, acknowledged
                sa_select(func.max(silences.id)).scalar_subquery(),  # silenced
                sa_select(func.count(silences.id)).where(active).scalar_subquery(),  # ended, or ran out
                sa_select(func.count(slos.id)).scalar_subquery(),  # SLOs added or removed
                sa_select(func.max(slos.updated_at)).scalar_subquery(),  # or changed
                sa_select(func.max(snapshots.id)).scalar_subquery(),
            )
        )
        .one()
    )
    return tuple(row[:-1]), row[-1]


@dataclass(frozen=True)
class Detail:
    record: SLORecord
    slo: SLO | None
    snapshot: SnapshotRecord | None
    breaches: tuple[BreachRecord, ...]  # open
    silence: SilenceRecord | None


def detail(session: Session, name: str, now: datetime) -> Detail | None:
    record = repo.get_slo(session=session, name=name)
    if record is None or record.id is None:
        return None
    try:
        slo: SLO | None = slo_of(record)
    except Exception:  # an unset secret: show what is stored all the same
        slo = None
    snapshot = repo.latest_snapshot(session, record.id)
    open_now = tuple(_firing(session).get(record.id, []))
    return Detail(record, slo, snapshot, open_now, _silences(session, now).get(record.id))
