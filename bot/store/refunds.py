"""Refunds in the store: a resolved breach marked a false positive, and its undoing. Functions over a
caller-owned session; the caller commits. The rows keep who refunded, why, and who undid it.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, select

from bot.adjustments import Interval
from bot.store.models import BreachRecord, RefundRecord, SLORecord
from bot.store.repo import utc


def active(*, session: Session, breach_id: int) -> RefundRecord | None:
    """The breach's refund in force, if any."""
    return session.exec(
        select(RefundRecord).where(
            col(RefundRecord.breach_id) == breach_id, col(RefundRecord.undone_at).is_(None)
        )
    ).first()


def refund(
    *, session: Session, breach: BreachRecord, span: Interval, by: str, why: str, now: datetime
) -> RefundRecord | None:
    """Exclude `span` (the breach's episode) from its SLO's budget; None if refunded already."""
    assert breach.id is not None
    if active(session=session, breach_id=breach.id) is not None:
        return None
    record = RefundRecord(
        breach_id=breach.id, excluded_from=span[0], excluded_to=span[1], by=by, why=why, at=now
    )
    session.add(record)
    session.flush()
    return record


def undo(*, session: Session, breach_id: int, by: str, now: datetime) -> RefundRecord | None:
    """Take the refund back: the breach's budget counts again. None if it was not refunded."""
    record = active(session=session, breach_id=breach_id)
    if record is None:
        return None
    record.undone_by = by
    record.undone_at = now
    session.add(record)
    return record


def intervals(*, session: Session) -> dict[str, tuple[Interval, ...]]:
    """Every refund in force, by SLO name: what the evaluations exclude."""
    rows = session.exec(
        select(SLORecord.name, RefundRecord.excluded_from, RefundRecord.excluded_to)
        .join(BreachRecord, col(BreachRecord.id) == col(RefundRecord.breach_id))
        .join(SLORecord, col(SLORecord.id) == col(BreachRecord.slo_id))
        .where(col(RefundRecord.undone_at).is_(None))
    ).all()
    out: dict[str, list[Interval]] = {}
    for name, start, end in rows:
        a, b = utc(start), utc(end)
        if a is not None and b is not None:
            out.setdefault(name, []).append((a, b))
    return {name: tuple(found) for name, found in out.items()}


def of_slo(*, session: Session, slo_id: int) -> list[tuple[RefundRecord, BreachRecord]]:
    """The SLO's refunds in force with their breaches, the newest first (for `/slo show`)."""
    rows = session.exec(
        select(RefundRecord, BreachRecord)
        .join(BreachRecord, col(BreachRecord.id) == col(RefundRecord.breach_id))
        .where(col(BreachRecord.slo_id) == slo_id, col(RefundRecord.undone_at).is_(None))
        .order_by(col(RefundRecord.at).desc())
    ).all()
    return [(r, b) for r, b in rows]
