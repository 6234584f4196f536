"""Error-budget arithmetic (SRE Workbook ch. 5): SLI, budget consumed and remaining, burn rate, exhaustion.

Pure functions over counts; `now` always comes in as an argument.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.domain import BudgetingMethod


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

    @property
    def coverage_ratio(self) -> float:
        return self.covered / self.span if self.span else 0.0


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
