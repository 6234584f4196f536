"""Breaches in the store: the open ones of an SLO, what one evaluation changed, people's actions.

Functions over a caller-owned session; the caller commits (with the tick's buckets: one transaction).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from sqlmodel import Session, col, select

from bot.alerting import FIRING, RESOLVED
from bot.breaches import BUDGET, NOTICE, OPENED, Change, OpenBreach, kind_of
from bot.store.models import AlertRecord, BreachEventRecord, BreachRecord, SLORecord
from bot.store.repo import update_if, utc


def open_breaches(*, session: Session, slo_id: int) -> list[BreachRecord]:
    """The SLO's firing breaches, oldest first."""
    return open_breaches_many(session=session, slo_ids=[slo_id]).get(slo_id, [])


def open_breaches_many(*, session: Session, slo_ids: Sequence[int]) -> dict[int, list[BreachRecord]]:
    """`open_breaches` of each of the SLOs (an SLO with none is left out): one query."""
    if not slo_ids:
        return {}
    found: dict[int, list[BreachRecord]] = {}
    for r in session.exec(
        select(BreachRecord)
        .where(col(BreachRecord.slo_id).in_(slo_ids), BreachRecord.state == FIRING)
        .order_by(col(BreachRecord.id))
    ):
        found.setdefault(r.slo_id, []).append(r)
    return found


def slos_with_open_breaches(*, session: Session) -> set[int]:
    rows = session.exec(select(BreachRecord.slo_id).where(BreachRecord.state == FIRING).distinct())
    return set(rows)


def still_open(*groups: Iterable[BreachRecord]) -> list[BreachRecord]:
    """The firing breaches among `groups`, each once, oldest first (as `open_breaches` orders them):
    after an evaluation moved its SLO's breaches, those it read and those it changed or opened are
    all there are (breaches open and close only in their SLO's evaluation, one at a time)."""
    found = {id(r): r for records in groups for r in records}
    return sorted((r for r in found.values() if r.state == FIRING), key=lambda r: r.id or 0)


def current(records: Sequence[BreachRecord]) -> dict[str, BreachRecord]:
    """The open breach of each kind (the newest, should an older one be open too)."""
    return {r.kind: r for r in sorted(records, key=lambda r: r.id or 0)}


def as_open(record: BreachRecord, signals: Mapping[str, AlertRecord]) -> OpenBreach:
    """The stored breach for `bot.breaches.advance`; `signals`: the SLO's open alerts by key."""
    opened = utc(record.opened_at)
    assert opened is not None
    firing = frozenset(k for k, a in signals.items() if a.state == FIRING and kind_of(k) == record.kind)
    return OpenBreach(record.kind, record.severity, record.peak, opened, firing, utc(record.clear_since))


def apply_changes(
    session: Session,
    slo_id: int,
    before: Mapping[str, BreachRecord],
    after: Mapping[str, OpenBreach],
    changes: Sequence[Change],
    signals: Mapping[str, AlertRecord],
    at: datetime,
    burns: Mapping[str, Mapping[str, float | None]] | None = None,
) -> list[tuple[Change, BreachRecord]]:
    """Persist what `bot.breaches.advance` decided; each change with the breach it belongs to.

    `signals`: the SLO's open alerts after this evaluation, by key; `burns`: this evaluation's burn
    rates by signal key (an open breach shows those of its headline as of its last evaluation)."""
    records = dict(before)
    done: list[tuple[Change, BreachRecord]] = []
    for change in changes:
        if change.event == OPENED:
            record = BreachRecord(
                slo_id=slo_id,
                kind=change.kind,
                severity=change.severity,
                peak=change.severity,
                state=FIRING,
                opened_at=at,
            )
            session.add(record)
            session.flush()
            records[change.kind] = record
        record = records[change.kind]
        assert record.id is not None
        if change.event == NOTICE:  # the crossing belongs to the breach whose thread says it
            for key in change.keys:
                if key in signals:
                    signals[key].breach_id = record.id
                    session.add(signals[key])
        if change.event == RESOLVED:
            for stale in open_breaches(session=session, slo_id=slo_id):
                if stale.kind == change.kind:
                    stale.state, stale.resolved_at, stale.clear_since = RESOLVED, at, None
                    stale.severity = stale.peak
                    session.add(stale)
        add_event(
            session=session, breach_id=record.id, at=at, event=change.event, detail=", ".join(change.keys)
        )
        done.append((change, record))
    for kind, breach in after.items():
        record = records[kind]
        record.severity, record.peak, record.clear_since = breach.severity, breach.peak, breach.clear_since
        headline = signals.get(breach.severity)
        if headline is not None and headline.state == FIRING and kind != BUDGET:
            record.burn_rates, record.reason = headline.burn_rates, headline.reason
            now_burning = (burns or {}).get(breach.severity)
            if now_burning:
                record.burn_rates = json.dumps(dict(now_burning))
        for key in breach.firing:
            signal = signals.get(key)
            if signal is not None and signal.breach_id is None:
                signal.breach_id = record.id
                session.add(signal)
        session.add(record)
    if done:  # the hooks read changed breaches back (the evaluation's session never autoflushes);
        session.flush()  # a steady breach's new burn rates wait for the commit, one batch for all
    return done


def claim_escalation(*, session: Session, breach: BreachRecord, now: datetime) -> bool:
    """Mark the breach escalated, unless someone acknowledged (or escalated) it since the caller read
    it: on PostgreSQL a person's click commits while a tick runs. True when claimed; otherwise the
    breach shows what was committed meanwhile."""
    return update_if(
        session=session,
        record=breach,
        when=[col(BreachRecord.acknowledged_by).is_(None), col(BreachRecord.escalated_at).is_(None)],
        values={"escalated_at": now},
        reread=["acknowledged_by", "acknowledged_at", "escalated_at"],
    )


def add_event(
    *, session: Session, breach_id: int, at: datetime, event: str, actor: str | None = None, detail: str = ""
) -> None:
    session.add(BreachEventRecord(breach_id=breach_id, at=at, event=event, actor=actor, detail=detail))


def signals_of(*, session: Session, breach_id: int) -> list[AlertRecord]:
    """Every signal that joined the breach (budget thresholds noted in it too), in the order they fired."""
    return list(
        session.exec(
            select(AlertRecord)
            .where(AlertRecord.breach_id == breach_id)
            .order_by(col(AlertRecord.fired_at), col(AlertRecord.id))
        )
    )


def with_slo(session: Session, breach_id: int) -> tuple[BreachRecord, SLORecord] | None:
    breach = session.get(BreachRecord, breach_id)
    if breach is None:
        return None
    record = session.get(SLORecord, breach.slo_id)
    return None if record is None else (breach, record)


def firing_breaches(*, session: Session) -> list[tuple[SLORecord, BreachRecord]]:
    """Every firing breach with its SLO, oldest first."""
    rows = session.exec(
        select(SLORecord, BreachRecord)
        .join(BreachRecord, col(BreachRecord.slo_id) == SLORecord.id)
        .where(BreachRecord.state == FIRING)
        .order_by(col(BreachRecord.opened_at), col(BreachRecord.id))
    )
    return [(slo, breach) for slo, breach in rows]


def summary(record: BreachRecord) -> dict[str, str | None]:
    """An `alerts` item of SPEC.md's status JSON: one per open breach, at its headline severity."""
    opened = utc(record.opened_at)
    state = "acknowledged" if record.acknowledged_by else record.state
    return {
        "severity": record.severity,
        "state": state,
        "since": opened.isoformat().replace("+00:00", "Z") if opened else None,
    }


def summaries(records: Sequence[BreachRecord]) -> list[dict[str, str | None]]:
    """Summaries in a stable order: oldest first, then by severity."""
    return sorted((summary(r) for r in records), key=lambda a: (a["since"] or "", a["severity"] or ""))


def burn_rates(record: BreachRecord) -> dict[str, float | None]:
    return dict(json.loads(record.burn_rates or "{}"))
