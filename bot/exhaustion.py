"""When an SLO's error budget runs out, since when a spent one is spent and when it comes back: the
`bot.budget.Outlook` of a status, read from the store (never written: it serves `status` beside `run`).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from bot import budget, composite, impact, parts
from bot.adjustments import without
from bot.breaches import EXHAUSTED
from bot.buckets import floor_time
from bot.budget import Outlook, Status
from bot.domain import SLO, Bucket
from bot.periods import period_bounds
from bot.store import adjustments as adjustment_store
from bot.store import history
from bot.store.models import AlertRecord, SnapshotRecord
from bot.store.repo import SNAPSHOT_RETENTION, utc

MINUTE = timedelta(minutes=1)


def budget_back_at(session: Session, slo: SLO, slo_id: int, now: datetime) -> datetime | None:
    """When the SLO's spent budget is expected back (see `bot.impact.budget_back`)."""
    if not slo.window.is_rolling:
        return impact.budget_back(slo, (), now)
    since = now - slo.window.duration
    if slo.parts:  # its budget is its parts': which part's failures age out when, and what it weighs
        found = [
            composite.PartBuckets(
                weight, part.objective.target_ratio, _window(session, slo, part_id, since, now)
            )
            for weight, part, part_id in parts.part_ids(session, slo, slo_id)
        ]
        return composite.budget_back(found, slo.budgeting_method, slo.window.duration, now)
    return impact.budget_back(slo, _window(session, slo, slo_id, since, now), now)


def _window(session: Session, slo: SLO, slo_id: int | None, since: datetime, now: datetime) -> list[Bucket]:
    """The stored buckets since `since` of `slo` or of one of its parts (None: a part not stored
    yet), less `slo`'s maintenance windows and refunds."""
    if slo_id is None:
        return []
    buckets = history.load_buckets(session=session, slo_id=slo_id, since=since)
    return _counted(session, slo, buckets, since, now)


def spent_since(
    session: Session, slo: SLO, slo_id: int, now: datetime, remaining: float | None = None
) -> tuple[datetime, bool] | None:
    """Since when the budget has been spent (and whether exactly so, see `budget.spent_since_evaluations`);
    `remaining`: the budget left at `now`, an evaluation that may not be stored yet (a tick's hooks run
    before its snapshot is written).

    A calendar period keeps every bucket since it began: they say when, to the bucket. A rolling
    window has lost the failures that aged out of it, so its evaluations say: the snapshots of the last
    hours, and the spent-budget signal (`budget-0`) for longer (it clears only 2 % above 0). A
    composite SLO's buckets are its parts': its evaluations say, whatever its window."""
    if not slo.window.is_rolling and not slo.parts:
        start, _ = period_bounds(slo.window, now)
        buckets = _counted(
            session, slo, history.load_buckets(session=session, slo_id=slo_id, since=start), start, now
        )
        inside = [b for b in buckets if b.start >= start and b.end <= now]
        found = budget.spent_since(inside, slo.budgeting_method, slo.objective.target_ratio)
        return None if found is None else (found, True)
    rows = session.exec(
        select(SnapshotRecord.evaluated_at, SnapshotRecord.remaining_ratio).where(
            SnapshotRecord.slo_id == slo_id,
            col(SnapshotRecord.evaluated_at) > now - SNAPSHOT_RETENTION,
            col(SnapshotRecord.evaluated_at) <= now,
        )
    ).all()
    evaluations = [(at, left) for at, left in ((utc(a), r) for a, r in rows) if at is not None]
    evaluations.append((now, remaining))
    signal = session.exec(
        select(AlertRecord.fired_at).where(
            AlertRecord.slo_id == slo_id, AlertRecord.key == EXHAUSTED, AlertRecord.state == "firing"
        )
    ).first()
    return budget.spent_since_evaluations(evaluations, utc(signal))


def outlook(session: Session, slo: SLO, slo_id: int, status: Status) -> Outlook:
    """The status's outlook: the budget's end at the window's average burn and at the 6-hour burn,
    or, when spent, since when and when it is back."""
    now = status.evaluated_at
    start, end = period_bounds(slo.window, now)
    rolling = slo.window.is_rolling
    burn = status.burn_rates.get(budget.PACE_WINDOW)
    if budget.PACE_WINDOW not in status.burn_rates:  # an AlertPolicy without a 6h window: sum it here
        end = floor_time(now, MINUTE)
        excluded = adjustment_store.load_exclusions(session=session).of(slo, end - budget.PACE_WINDOW, end)
        sums = parts.window_sums(session, slo, slo_id, end, [budget.PACE_WINDOW], excluded)
        counts = sums[budget.PACE_WINDOW]
        burn = budget.burn_rate(budget.sli_ratio(counts, slo.budgeting_method), slo.objective.target_ratio)
    paces = budget.paces(
        status,
        burn,
        period=slo.window.duration if rolling else end - start,
        period_end=None if rolling else end,
    )
    result = Outlook(status.remaining_ratio, paces, None if rolling else end)
    if not result.spent:
        return result
    since = spent_since(session, slo, slo_id, now, status.remaining_ratio)
    return Outlook(
        status.remaining_ratio,
        paces,
        result.period_end,
        spent_since=since[0] if since else None,
        spent_since_exact=since[1] if since else True,
        back_at=budget_back_at(session, slo, slo_id, now),
    )


def _counted(
    session: Session, slo: SLO, buckets: list[Bucket], start: datetime, end: datetime
) -> list[Bucket]:
    """`buckets` with the SLO's maintenance windows and refunds left out, as its budget leaves them."""
    excluded = adjustment_store.load_exclusions(session=session).of(slo, start, end)
    return without(buckets, excluded) if excluded else buckets
