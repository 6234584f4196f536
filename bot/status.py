"""An SLO's status and alert signals at one instant, from the event counts of its windows. Pure.

Live evaluations (counts summed by the database) and `replay` (counts from prefix sums) both call
`assess`, so the two can never disagree on the arithmetic or the policy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot import budget, policy
from bot.budget import Status, WindowCounts
from bot.domain import SLO


@dataclass(frozen=True)
class Assessment:
    status: Status
    signals: tuple[policy.Signal, ...]
    parts: tuple[tuple[str, Status], ...] = ()  # a composite SLO's: each part's own, by name


def assess(
    slo: SLO,
    rules: policy.Policy,
    counts: Mapping[timedelta, WindowCounts],
    *,
    now: datetime,
    period_start: datetime,
    period_end: datetime,
    period_span: timedelta,
    warnings: tuple[str, ...] = (),
) -> Assessment:
    """`counts` holds every window of `rules.windows` plus `period_span` (the period so far)."""
    target = slo.objective.target_ratio
    method = slo.budgeting_method
    period_counts = counts[period_span]
    sli = budget.sli_ratio(period_counts, method)
    consumed = budget.budget_consumed_ratio(sli, target) if sli is not None else None
    remaining = 1.0 - consumed if consumed is not None else None
    burns = {w: budget.burn_rate(budget.sli_ratio(counts[w], method), target) for w in rules.windows}
    period = slo.window.duration if slo.window.is_rolling else period_end - period_start
    exhaustion_at = None
    if remaining is not None:
        left = budget.time_to_exhaustion(remaining, burns.get(policy.EXHAUSTION_WINDOW), period)
        if left is not None and (slo.window.is_rolling or now + left < period_end):
            exhaustion_at = now + left
    signals = policy.signals(rules, counts, target_ratio=target, method=method, remaining_ratio=remaining)
    burning = any(s.active for s in signals if s.key in rules.severities)
    status = Status(
        evaluated_at=now,
        sli=sli,
        good=period_counts.good,
        total=period_counts.total,
        consumed_ratio=consumed,
        remaining_ratio=remaining,
        burn_rates={w: burns[w] for w in rules.burn_windows},
        exhaustion_at=exhaustion_at,
        state=budget.state_of(sli, remaining, burning),
        coverage_ratio=period_counts.coverage_ratio,
        warnings=warnings,
    )
    return Assessment(status, tuple(signals))
