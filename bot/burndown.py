"""What a burn-down chart shows, assembled from stored history: the budget left over the SLO period,
the burn rate of each policy window, the breaches and the spans to hatch. Numbers only, no drawing.

`burn_down` is pure (buckets and breaches in, series out); `load_burn_down` reads them from the store.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import accumulate

from sqlmodel import Session, col, or_, select

from bot import adjustments
from bot.annotations import group_by_of
from bot.buckets import MINUTE, floor_time
from bot.domain import SLO, Bucket, BudgetingMethod
from bot.messages import headline
from bot.periods import period_bounds, period_length
from bot.policy import Policy, policy_for
from bot.store import adjustments as adjustment_store
from bot.store import history
from bot.store.models import BreachRecord
from bot.store.repo import utc

MAX_POINTS = 720  # points per series: a phone shows fewer pixels than that across a chart


@dataclass(frozen=True)
class Span:
    """A stretch of time the chart marks: a breach (shaded) or a maintenance window (hatched)."""

    start: datetime
    end: datetime | None  # None: still going on at `now`
    label: str
    severity: str = ""  # a breach's highest severity: `page`, `ticket`, `no-data`, `budget-…`


@dataclass(frozen=True)
class BurnSeries:
    window: timedelta
    threshold: float | None  # the lowest burn that fires a rule on this window
    values: tuple[float | None, ...]  # None where the window held no events


@dataclass(frozen=True)
class BurnDown:
    slo: str
    service: str
    objective_ratio: float
    window_spec: str  # as written: "30d", "1M"
    period_start: datetime
    period_end: datetime  # a rolling period ends at `now`; a calendar one may end later
    now: datetime
    times: tuple[datetime, ...]
    remaining: tuple[float | None, ...]  # budget left at each time, 1.0 = all of it; None: no data yet
    burns: tuple[BurnSeries, ...]
    breaches: tuple[Span, ...]
    # maintenance windows and refunded breaches: hatched, and their events left out of every number
    maintenance: tuple[tuple[datetime, datetime, str], ...] = ()

    @property
    def remaining_now(self) -> float | None:
        return self.remaining[-1] if self.remaining else None

    def ideal_at(self, at: datetime) -> float:
        """The straight line from the whole budget at the period's start to none at its end."""
        whole = (self.period_end - self.period_start).total_seconds()
        return 1.0 - (at - self.period_start).total_seconds() / whole if whole else 0.0


def _bad_and_events(b: Bucket, method: BudgetingMethod) -> tuple[float, float]:
    if method is BudgetingMethod.OCCURRENCES:
        return max(0.0, b.total - min(b.good, b.total)), b.total
    if method is BudgetingMethod.TIMESLICES:
        return max(0.0, b.slices - b.good_slices), b.slices
    return max(0.0, b.slices - b.ratio_sum), b.slices


class _Minutes:
    """Failed events and events per minute from `start`, as prefix sums: any window is two lookups.

    Stored buckets older than a few hours are hourly; they are spread evenly over their minutes
    (what the chart draws inside an hour is the hour's average)."""

    def __init__(self, start: datetime, end: datetime, buckets: Sequence[Bucket], method: BudgetingMethod):
        self.start = start
        count = max(0, int((end - start) / MINUTE))
        bad, events = [0.0] * count, [0.0] * count
        for b in buckets:
            first = int((b.start - start) / MINUTE)
            length = max(1, int(b.resolution / MINUTE))
            lo, hi = max(0, first), min(count, first + length)
            if lo >= hi:
                continue
            b_bad, b_events = _bad_and_events(b, method)
            bad[lo:hi] = [x + b_bad / length for x in bad[lo:hi]]
            events[lo:hi] = [x + b_events / length for x in events[lo:hi]]
        self.bad = [0.0, *accumulate(bad)]
        self.events = [0.0, *accumulate(events)]

    def _index(self, at: datetime) -> int:
        return max(0, min(len(self.bad) - 1, int((at - self.start) / MINUTE)))

    def between(self, start: datetime, end: datetime) -> tuple[float, float]:
        a, b = self._index(start), self._index(end)
        return self.bad[b] - self.bad[a], self.events[b] - self.events[a]


def burn_down(
    slo: SLO,
    rules: Policy,
    buckets: Sequence[Bucket],
    breaches: Sequence[Span],
    now: datetime,
    maintenance: Sequence[tuple[datetime, datetime, str]] = (),
) -> BurnDown:
    """The series of one SLO's chart as of `now`, from its buckets (sorted or not, any resolution).

    The budget left at time t is the period's budget (1 - objective of its events so far, as the
    evaluation counts it) less what failed between the period's start and t: the line ends where
    `/slo show` says the budget is. Burn rates are those of each rule's long window at t.
    `maintenance` (start, end, label) is excluded time: its events count nowhere (as in the
    evaluation, `bot.adjustments`), and the chart hatches it.
    """
    if maintenance:
        buckets = adjustments.without(buckets, [(a, b) for a, b, _ in maintenance])
    end = floor_time(now, MINUTE)
    period_start, period_end = period_bounds(slo.window, end)
    windows = sorted({r.long for r in rules.rules})
    longest = max(windows, default=timedelta(0))
    minutes = _Minutes(period_start - longest, end, buckets, slo.budgeting_method)
    budget_ratio = 1.0 - slo.objective.target_ratio
    _, events = minutes.between(period_start, end)
    allowed = events * budget_ratio
    span = end - period_start
    step = max(MINUTE, MINUTE * -(-int(span / MINUTE) // MAX_POINTS))  # ceil: at most MAX_POINTS
    count = int(span / step)
    times = [end - (count - i) * step for i in range(count + 1)]
    remaining: list[float | None] = []
    for t in times:
        spent, _ = minutes.between(period_start, t)
        remaining.append(1.0 - spent / allowed if allowed > 0 else None)
    burns = []
    for w in windows:
        values: list[float | None] = []
        for t in times:
            bad, seen = minutes.between(t - w, t)
            values.append(bad / seen / budget_ratio if seen > 0 else None)
        thresholds = [r.threshold for r in rules.rules if r.long == w]
        burns.append(BurnSeries(w, min(thresholds) if thresholds else None, tuple(values)))
    return BurnDown(
        slo=slo.name,
        service=slo.service,
        objective_ratio=slo.objective.target_ratio,
        window_spec=slo.window.spec,
        period_start=period_start,
        period_end=max(period_end, end),
        now=end,
        times=tuple(times),
        remaining=tuple(remaining),
        burns=tuple(burns),
        breaches=tuple(breaches),
        maintenance=tuple(maintenance),
    )


def has_chart(slo: SLO) -> bool:
    """Whether the SLO keeps buckets of its own to chart: a grouped SLO's definition and a composite
    SLO do not (each member and each part has its own)."""
    grouped = slo.member_of is None and bool(group_by_of(slo.annotations))
    return not grouped and not slo.parts


def breach_spans(records: Sequence[BreachRecord]) -> list[Span]:
    """Each breach as the span it covers, labelled with its number and highest severity."""
    spans = []
    for b in records:
        opened = utc(b.opened_at)
        if opened is None:
            continue
        spans.append(Span(opened, utc(b.resolved_at), f"#{b.id} {headline(b.kind, b.peak)}", b.peak))
    return spans


def load_burn_down(session: Session, slo: SLO, slo_id: int, now: datetime) -> BurnDown:
    """`burn_down` of a stored SLO: its buckets since the period's start (and its longest burn
    window before it) and the breaches open at any time in the period."""
    end = floor_time(now, MINUTE)
    rules = policy_for(slo, period_length(slo.window, end))
    period_start, _ = period_bounds(slo.window, end)
    longest = max((r.long for r in rules.rules), default=timedelta(0))
    buckets = history.load_buckets(session=session, slo_id=slo_id, since=period_start - longest)
    records = session.exec(
        select(BreachRecord)
        .where(
            BreachRecord.slo_id == slo_id,
            col(BreachRecord.opened_at) <= now,
            or_(col(BreachRecord.resolved_at).is_(None), col(BreachRecord.resolved_at) >= period_start),
        )
        .order_by(col(BreachRecord.opened_at))
    )
    excluded = _excluded(session, slo, period_start - longest, end)
    return burn_down(slo, rules, buckets, breach_spans(list(records)), now, excluded)


def _excluded(
    session: Session, slo: SLO, start: datetime, end: datetime
) -> list[tuple[datetime, datetime, str]]:
    """The SLO's maintenance windows (by name) and refunded breaches over [start, end), clipped."""
    found = adjustment_store.load_exclusions(session=session)
    spans = [
        (max(a, start), min(b, end), adjustment.name)
        for adjustment in found.adjustments
        if adjustment.applies_to(slo)
        for a, b in adjustments.occurrences(adjustment, start, end)
    ]
    spans += [(max(a, start), min(b, end), "refunded") for a, b in found.refunds.get(slo.name, ())]
    return sorted(s for s in spans if s[1] > s[0])
