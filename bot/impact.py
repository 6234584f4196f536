"""What an alert episode cost in error budget: one measurement for the live path and `replay`.

Pure: the SLO, the episode's times and a way to sum event counts in; the share of the budget out.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta

from bot import budget
from bot.budget import WindowCounts
from bot.domain import SLO, Bucket
from bot.periods import period_bounds, period_length
from bot.policy import policy_for

# Sums of event counts over windows that all end at the episode's end: the store's `window_sums`
# live, prefix sums of the fetched history in replay.
WindowSums = Callable[[Sequence[timedelta]], Mapping[timedelta, WindowCounts]]


def episode_start(slo: SLO, key: str, fired_at: datetime) -> datetime:
    """A burn alert fires some time after its failures begin; counting from the firing would leave
    them out. Its failures count from its shortest window before it fired (5 minutes for the default
    page): long enough to hold an outage's start, short enough to leave out what came before."""
    rules = [r for r in policy_for(slo, period_length(slo.window, fired_at)).rules if r.severity == key]
    return fired_at - min((r.short for r in rules), default=timedelta(0))


def budget_from(slo: SLO, start: datetime, end: datetime) -> datetime:
    """Where the events the budget is a share of begin: the SLO's period at `end` (its whole window
    when rolling, so far when calendar: the same events as the budget remaining), reaching back to
    the episode's start when it began in the period before."""
    period_start, _ = period_bounds(slo.window, end)
    return min(period_start, start)


def episode_cost(slo: SLO, key: str, fired_at: datetime, end: datetime, sums: WindowSums) -> float | None:
    """The share of the budget spent from `episode_start` to `end` (may exceed 1); None when the
    period had no events to measure against."""
    start = episode_start(slo, key, fired_at)
    if end <= start:
        return 0.0
    spent, whole = end - start, end - budget_from(slo, start, end)
    counts = sums([spent, whole])
    return budget.episode_cost_ratio(
        counts[spent], counts[whole], slo.budgeting_method, slo.objective.target_ratio
    )


def budget_minutes(slo: SLO, at: datetime) -> timedelta:
    """The whole budget as full-outage time in the period holding `at`: 43.2 minutes at 99.9 % over
    30 days, 44.64 in a 31-day calendar month, 40.32 in February 2026."""
    return budget.budget_time(slo.objective.target_ratio, period_length(slo.window, at))


def budget_back(slo: SLO, buckets: Sequence[Bucket], now: datetime) -> datetime | None:
    """When a spent budget is expected back above zero if nothing more fails: a calendar window's
    next period; a rolling window's once enough of its failures have aged out of it, at the traffic
    it holds now. `buckets`: the window's, any resolution. None: not within a window's length."""
    if not slo.window.is_rolling:
        return period_bounds(slo.window, now)[1]
    start = now - slo.window.duration
    inside = sorted((b for b in buckets if b.end > start and b.start < now), key=lambda b: b.start)
    counts = [budget.bad_and_events(b, slo.budgeting_method) for b in inside]
    bad = sum(c[0] for c in counts)
    allowed = (1 - slo.objective.target_ratio) * sum(c[1] for c in counts)
    if bad <= allowed:
        return now
    for bucket, (lost, _) in zip(inside, counts, strict=True):
        bad -= lost
        if bad <= allowed:
            return bucket.end + slo.window.duration
    return None
