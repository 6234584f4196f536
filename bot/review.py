"""An SLO review over a period (the last 7 or 30 days, or the quarter so far), for product owners: per
SLO its SLI against the objective, its budget at the end and how the period moved it, its breaches and
failures. Computed from the stored buckets and breaches, read-only: it runs beside `slo-bot run`.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlmodel import Session, col, select

from bot import budget, episodes, parts
from bot.budget import WindowCounts
from bot.catalogue.stored import slo_of
from bot.domain import SLO, BudgetingMethod
from bot.periods import period_bounds
from bot.store import adjustments as adjustment_store
from bot.store import history, readings, repo
from bot.store.models import BreachRecord, SLORecord

PERIODS = ("7d", "30d", "quarter")
TOP_BREACHES = 3  # the breaches that spent most, per SLO
READING_AGE = timedelta(days=1)  # a daily reading stands for the budget at a period's start this long


def period_of(name: str, now: datetime) -> tuple[datetime, datetime]:
    """[start, now) of a report period: the last 7 or 30 days, or the calendar quarter (UTC) so far."""
    if name == "7d":
        return now - timedelta(days=7), now
    if name == "30d":
        return now - timedelta(days=30), now
    if name == "quarter":
        first_month = (now.month - 1) // 3 * 3 + 1
        return datetime(now.year, first_month, 1, tzinfo=UTC), now
    raise ValueError(f"unknown period {name!r}: one of {', '.join(PERIODS)}")


@dataclass(frozen=True)
class BreachLine:
    number: int
    kind: str  # burn | no-data | budget
    severity: str  # the highest it reached
    opened_at: datetime
    resolved_at: datetime | None  # None: still open
    time_to_acknowledge: timedelta | None  # None: not acknowledged
    spent_ratio: float | None  # the share of the SLO's budget it spent (None: unknown)


@dataclass(frozen=True)
class SLOReview:
    slo: str
    service: str
    objective: float | None
    window: str | None
    sli: float | None  # over the period, from the stored buckets (None: no data)
    good: float  # events (or good slices) in the period
    total: float
    failed: float  # bad events (or bad slices)
    coverage_ratio: float  # the share of the period the store has data for
    budget_remaining: float | None  # at the period's end
    budget_remaining_at_start: float | None  # None: neither the buckets nor a daily reading say
    budget_start_measured_at: datetime | None  # the period's start, or the daily reading's time
    budget_spent_in_period: float | None  # the period's failures as a share of the budget at the end
    breaches: tuple[BreachLine, ...]  # opened in the period, oldest first
    period_start: datetime | None = None
    failing_since: datetime | None = None  # its evaluations fail (source, definition) since then
    failure: str | None = None

    @property
    def budget_change(self) -> float | None:
        if self.budget_remaining is None or self.budget_remaining_at_start is None:
            return None
        return self.budget_remaining - self.budget_remaining_at_start

    @property
    def acknowledged(self) -> int:
        return sum(1 for b in self.breaches if b.time_to_acknowledge is not None)

    @property
    def median_time_to_acknowledge(self) -> timedelta | None:
        seconds = [b.time_to_acknowledge.total_seconds() for b in self.breaches if b.time_to_acknowledge]
        return timedelta(seconds=statistics.median(seconds)) if seconds else None

    @property
    def top_breaches(self) -> list[BreachLine]:
        """The breaches that spent most of the budget, most first (unknown costs last)."""
        ranked = sorted(self.breaches, key=lambda b: (b.spent_ratio is None, -(b.spent_ratio or 0.0)))
        return ranked[:TOP_BREACHES]


@dataclass(frozen=True)
class Review:
    period: str  # 7d | 30d | quarter
    start: datetime
    end: datetime
    service: str | None
    slos: tuple[SLOReview, ...]


def build(session: Session, *, period: str, now: datetime, service: str | None = None) -> Review:
    """The review of every SLO (of `service`) over `period` ending `now`; grouped SLOs by member."""
    start, end = period_of(period, now)
    records = repo.list_slos(session=session, members=True)
    parents = {r.group_id for r in records if r.group_id}
    slos = [
        _review(session, record, start, end)
        for record in records
        if not (record.group_by and record.id in parents) and service in (None, record.service)
    ]
    return Review(period, start, end, service, tuple(sorted(slos, key=lambda s: (s.service, s.slo))))


def services(session: Session) -> list[str]:
    return sorted({r.service for r in repo.list_slos(session=session, members=True)})


def _review(session: Session, record: SLORecord, start: datetime, end: datetime) -> SLOReview:
    assert record.id is not None
    try:
        slo: SLO | None = slo_of(record)
    except Exception:  # the definition does not build here (an unset secret): its counts still say
        slo = None
    method = slo.budgeting_method if slo else BudgetingMethod.OCCURRENCES
    counts = _sums(session, slo, record.id, end, [end - start])[end - start]
    good, total, failed = _events(counts, method)
    remaining_end = spent = None
    remaining_start: tuple[float | None, datetime] | None = None
    if slo is not None:
        target = slo.objective.target_ratio
        window_start, _ = period_bounds(slo.window, end)
        at_end = _sums(session, slo, record.id, end, [end - window_start])[end - window_start]
        remaining_end = _remaining(at_end, method, target)
        allowed = budget.error_budget_ratio(target) * _events(at_end, method)[1]
        spent = failed / allowed if allowed > 0 else None
        remaining_start = _remaining_at(session, record, slo, start)
    failing_since = repo.utc(record.failing_since)
    return SLOReview(
        slo=record.name,
        service=record.service,
        objective=slo.objective.target_ratio if slo else None,
        window=slo.window.spec if slo else None,
        sli=budget.sli_ratio(counts, method),
        good=good,
        total=total,
        failed=failed,
        coverage_ratio=counts.coverage_ratio,
        budget_remaining=remaining_end,
        budget_remaining_at_start=remaining_start[0] if remaining_start else None,
        budget_start_measured_at=remaining_start[1] if remaining_start else None,
        budget_spent_in_period=spent,
        breaches=_breaches(session, record, slo, start, end),
        period_start=start,
        failing_since=failing_since if failing_since and failing_since <= end else None,
        failure=record.failure if failing_since and failing_since <= end else None,
    )


def _sums(
    session: Session, slo: SLO | None, slo_id: int, end: datetime, windows: Sequence[timedelta]
) -> dict[timedelta, WindowCounts]:
    """A composite's are its parts', weighted (`bot.composite`); a part is reviewed as an SLO too.
    Maintenance windows and refunds are left out, as the evaluations leave them out (an SLO whose
    definition does not build here: its plain counts)."""
    if slo is not None:
        excluded = adjustment_store.load_exclusions(session=session).of(slo, end - max(windows), end)
        return parts.window_sums(session, slo, slo_id, end, windows, excluded)
    return history.window_sums(session=session, slo_id=slo_id, end=end, windows=windows)


def _events(counts: WindowCounts, method: BudgetingMethod) -> tuple[float, float, float]:
    """(good, all, bad): events, or slices for the Timeslices methods."""
    if method is BudgetingMethod.OCCURRENCES:
        good, total = min(counts.good, counts.total), counts.total
    elif method is BudgetingMethod.TIMESLICES:
        good, total = min(counts.good_slices, counts.slices), counts.slices
    else:
        good, total = min(counts.ratio_sum, counts.slices), counts.slices
    return good, total, total - good


def _remaining(counts: WindowCounts, method: BudgetingMethod, target: float) -> float | None:
    sli = budget.sli_ratio(counts, method)
    return None if sli is None else 1.0 - budget.budget_consumed_ratio(sli, target)


def _remaining_at(
    session: Session, record: SLORecord, slo: SLO, at: datetime
) -> tuple[float | None, datetime] | None:
    """The budget left at `at`, and when it was measured. From the buckets when the store still holds
    the SLO's window as it was then (a calendar period the report starts in; one that begins at `at`
    is whole); else from the daily reading of that day, taken at its first evaluation (a rolling
    window's older failures are gone from the buckets); None when neither says."""
    window_start, _ = period_bounds(slo.window, at)
    if window_start == at:
        return 1.0, at
    covered = repo.utc(record.covered_from)
    assert record.id is not None
    if covered is not None and window_start >= covered:
        counts = _sums(session, slo, record.id, at, [at - window_start])[at - window_start]
        return _remaining(counts, slo.budgeting_method, slo.objective.target_ratio), at
    found = readings.at_or_before(session=session, slo_id=record.id, at=at, within=READING_AGE)
    return None if found is None else (found.remaining_ratio, readings.measured_at(found))


def _breaches(
    session: Session, record: SLORecord, slo: SLO | None, start: datetime, end: datetime
) -> tuple[BreachLine, ...]:
    found = session.exec(
        select(BreachRecord)
        .where(
            BreachRecord.slo_id == record.id,
            col(BreachRecord.opened_at) >= start,
            col(BreachRecord.opened_at) < end,
        )
        .order_by(col(BreachRecord.opened_at), col(BreachRecord.id))
    ).all()
    lines = []
    for breach in found:
        opened = repo.utc(breach.opened_at)
        assert opened is not None
        acked = repo.utc(breach.acknowledged_at)
        cost = breach.spent_ratio
        if slo is not None:  # an open one's cost so far; a resolved one's as measured when it ended
            cost = episodes.episode_of(session, slo, breach, end).cost_ratio
        resolved = repo.utc(breach.resolved_at)
        lines.append(
            BreachLine(
                number=breach.id or 0,
                kind=breach.kind,
                severity=breach.peak,
                opened_at=opened,
                resolved_at=resolved if resolved is None or resolved <= end else None,
                time_to_acknowledge=None if acked is None else max(acked - opened, timedelta(0)),
                spent_ratio=cost,
            )
        )
    return tuple(lines)
