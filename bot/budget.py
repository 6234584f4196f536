"""Error-budget arithmetic (SRE Workbook ch. 5): SLI, budget consumed and remaining, burn rate, exhaustion.

Pure functions over counts; `now` always comes in as an argument.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.domain import Bucket, BudgetingMethod

# The second pace the budget's end is projected at, beside the SLO window's average: the 6-hour
# burn (the default policy's slow page) says where the last hours are heading, without the 1h's jitter.
PACE_WINDOW = timedelta(hours=6)


@dataclass(frozen=True)
class WindowCounts:
    """What the store holds for one window: events, slices, and how much of the window had data."""

    good: float = 0.0
    total: float = 0.0
    good_slices: float = 0.0
    slices: float = 0.0
    ratio_sum: float = 0.0
    covered: timedelta = timedelta(0)
    span: timedelta = timedelta(0)
    excluded: timedelta = timedelta(0)  # maintenance windows and refunds: time that does not count

    @property
    def coverage_ratio(self) -> float:
        counted = self.span - self.excluded
        return self.covered / counted if counted > timedelta(0) else 0.0


def sli_ratio(counts: WindowCounts, method: BudgetingMethod) -> float | None:
    """Good fraction of the window, or None when there is no data (0 / 0 is never 100 %)."""
    if method is BudgetingMethod.OCCURRENCES:
        if counts.total <= 0:
            return None
        return min(counts.good, counts.total) / counts.total
    if counts.slices <= 0:
        return None
    if method is BudgetingMethod.TIMESLICES:
        return min(counts.good_slices, counts.slices) / counts.slices
    return min(counts.ratio_sum, counts.slices) / counts.slices


def error_budget_ratio(target_ratio: float) -> float:
    return 1.0 - target_ratio


def budget_consumed_ratio(sli: float, target_ratio: float) -> float:
    """(1 - SLI) / (1 - objective); above 1 when the budget is overspent."""
    return (1.0 - sli) / error_budget_ratio(target_ratio)


def burn_rate(sli: float | None, target_ratio: float) -> float | None:
    """Error ratio over a window divided by the error budget: 1 spends the budget in one period."""
    if sli is None:
        return None
    return (1.0 - sli) / error_budget_ratio(target_ratio)


def time_to_exhaustion(remaining_ratio: float, burn: float | None, period: timedelta) -> timedelta | None:
    """How long the remaining budget lasts at `burn`; None when nothing is burning or none is left."""
    if burn is None or burn <= 0 or remaining_ratio <= 0:
        return None
    return period * (remaining_ratio / burn)


def exhaustion_at(
    remaining_ratio: float | None,
    burn: float | None,
    period: timedelta,
    now: datetime,
    period_end: datetime | None = None,
) -> datetime | None:
    """When the remaining budget is gone if `burn` holds (SPEC.md: remaining / burn, in periods).
    None when nothing burns or nothing is left, and for a calendar window (`period_end`) when that
    falls at or after the period's end: the budget resets first."""
    if remaining_ratio is None:
        return None
    left = time_to_exhaustion(remaining_ratio, burn, period)
    if left is None or (period_end is not None and now + left >= period_end):
        return None
    return now + left


def budget_time(target_ratio: float, period: timedelta) -> timedelta:
    """The whole budget expressed as full-outage time: 99.9 % over 30d is 43.2 minutes."""
    return period * error_budget_ratio(target_ratio)


@dataclass(frozen=True)
class Status:
    """An SLO's state at one evaluation. `burn_rates` maps each window to its burn (None: no data)."""

    evaluated_at: datetime
    sli: float | None
    good: float
    total: float
    consumed_ratio: float | None
    remaining_ratio: float | None
    burn_rates: dict[timedelta, float | None]
    exhaustion_at: datetime | None
    state: str  # ok | burning | exhausted | no_data
    coverage_ratio: float
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class Pace:
    """One projection of the budget's end: the burn it assumes and when the budget runs out at it."""

    window: timedelta | None  # None: the SLO window's average burn (its burn over the window so far)
    burn: float | None  # None: no data over that window
    runs_out_at: datetime | None  # None: not at this burn (or not before a calendar period resets)


@dataclass(frozen=True)
class Outlook:
    """When an SLO's remaining budget runs out, or, once spent, since when and when it comes back."""

    remaining_ratio: float | None
    paces: tuple[Pace, ...]
    period_end: datetime | None  # a calendar window's reset; None for a rolling window
    spent_since: datetime | None = None
    spent_since_exact: bool = True  # False: spent since then or earlier (see `spent_since_evaluations`)
    back_at: datetime | None = None

    @property
    def spent(self) -> bool:
        return self.remaining_ratio is not None and self.remaining_ratio <= 0


def paces(
    status: Status,
    window_burn: float | None,
    *,
    period: timedelta,
    period_end: datetime | None,
    window: timedelta = PACE_WINDOW,
) -> tuple[Pace, Pace]:
    """The budget's end at the SLO window's average burn (the budget consumed so far is that burn:
    (1 - SLI) / (1 - objective) over the window) and at the burn over `window`."""
    remaining, now = status.remaining_ratio, status.evaluated_at
    average = status.consumed_ratio
    return (
        Pace(None, average, exhaustion_at(remaining, average, period, now, period_end)),
        Pace(window, window_burn, exhaustion_at(remaining, window_burn, period, now, period_end)),
    )


def state_of(sli: float | None, remaining_ratio: float | None, burning: bool) -> str:
    if sli is None or remaining_ratio is None:
        return "no_data"
    if remaining_ratio <= 0:
        return "exhausted"
    return "burning" if burning else "ok"


def episode_cost_ratio(
    episode: WindowCounts, period: WindowCounts, method: BudgetingMethod, target_ratio: float
) -> float | None:
    """The share of the period's error budget the failures of one episode used (may exceed 1).

    The budget is `1 - objective` of the period's events (or slices); None when it had none.
    """
    if method is BudgetingMethod.OCCURRENCES:
        bad, events = max(0.0, episode.total - episode.good), period.total
    elif method is BudgetingMethod.TIMESLICES:
        bad, events = max(0.0, episode.slices - episode.good_slices), period.slices
    else:
        bad, events = max(0.0, episode.slices - episode.ratio_sum), period.slices
    allowed = events * error_budget_ratio(target_ratio)
    return bad / allowed if allowed > 0 else None


def bad_and_events(bucket: Bucket, method: BudgetingMethod) -> tuple[float, float]:
    """A bucket's failures and what they are a share of: events, or slices for the Timeslices methods."""
    if method is BudgetingMethod.OCCURRENCES:
        return max(0.0, bucket.total - bucket.good), bucket.total
    if method is BudgetingMethod.TIMESLICES:
        return max(0.0, bucket.slices - bucket.good_slices), bucket.slices
    return max(0.0, bucket.slices - bucket.ratio_sum), bucket.slices


def spent_since(buckets: Sequence[Bucket], method: BudgetingMethod, target_ratio: float) -> datetime | None:
    """A calendar period's budget: since when it has been spent (remaining at or below 0 from then
    on), from the period's buckets so far. The end of the bucket whose failures spent it: exact to
    the bucket's length (a minute recently, an hour after a few days). None while some is left."""
    bad = events = 0.0
    since: datetime | None = None
    for bucket in sorted(buckets, key=lambda b: b.start):
        lost, counted = bad_and_events(bucket, method)
        bad, events = bad + lost, events + counted
        if events <= 0:  # no data yet: nothing measured, nothing spent
            continue
        spent = bad >= events * error_budget_ratio(target_ratio)  # 1 - (bad/events) / (1 - o) <= 0
        since = (since or bucket.end) if spent else None
    return since


def spent_since_evaluations(
    evaluations: Sequence[tuple[datetime, float | None]], fired_at: datetime | None
) -> tuple[datetime, bool] | None:
    """A rolling window's budget: since when it has been spent, from the evaluations kept (time and
    remaining ratio, any order) and when the spent-budget signal fired (None: not firing).

    The failures that spent it may have left the window since, so the buckets cannot say; the
    evaluations can: the first of the newest unbroken run at or below 0. When that run reaches the
    oldest evaluation kept, the budget was spent before it too: the signal's firing says since when
    (exact), else the oldest evaluation is all that is known (`False`: "or earlier"). None when the
    newest evaluation has budget left, or none has data."""
    known = sorted((at, r) for at, r in evaluations if r is not None)
    if not known or known[-1][1] > 0:
        return None
    run_start = known[-1][0]
    for at, remaining in reversed(known):
        if remaining > 0:
            return run_start, True
        run_start = at
    if fired_at is not None and fired_at <= run_start:
        return fired_at, True
    return run_start, False
