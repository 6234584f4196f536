"""Composite SLOs: the weighted budget of a journey across services, from its parts' counts. Pure.

Nobl9's composite SLOs (2.0) and Elastic's weigh their components' normalized burn: each part's
failures are measured against its own objective, so a 99.99 % part and a 99 % part count alike
when each spends its budget at the same pace. Over any window w:

    burn(w)     = sum_i weight_i * burn_i(w) / sum_i weight_i,  burn_i = error ratio_i / (1 - target_i)
    target      = 1 - sum_i weight_i * (1 - target_i) / sum_i weight_i
    error ratio = burn(w) * (1 - target)                         (the composite's SLI is 1 - that)

so budget consumed over the period is the weighted mean of the parts' consumed budgets, and with
equal targets the error ratio is the weighted mean of the parts' error ratios. A part with no data
in a window is left out of that window's mean (the others' weights carry it); none: no data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot import budget
from bot.budget import WindowCounts
from bot.domain import SLO, Bucket, BudgetingMethod


@dataclass(frozen=True)
class PartCounts:
    """What one part contributes: its weight, its own objective and its counts by window."""

    weight: float
    target_ratio: float
    counts: Mapping[timedelta, WindowCounts]


def target_ratio(parts: Sequence[tuple[float, float]]) -> float:
    """The composite's objective from (weight, target) pairs: the weighted mean of the targets."""
    weights = sum(w for w, _ in parts)
    return 1.0 - sum(w * (1.0 - t) for w, t in parts) / weights


def burn_rate(parts: Sequence[tuple[float, float | None]]) -> float | None:
    """The weighted mean of the parts' burn rates, (weight, burn or None for no data) pairs."""
    known = [(w, b) for w, b in parts if b is not None]
    weights = sum(w for w, _ in known)
    if not known or weights <= 0:
        return None
    return sum(w * b for w, b in known) / weights


def combine(
    parts: Sequence[PartCounts], method: BudgetingMethod, windows: Sequence[timedelta]
) -> dict[timedelta, WindowCounts]:
    """Counts of the composite for each window, made so that `budget.sli_ratio` and
    `budget.burn_rate` against `target_ratio` of the parts give the composite's burn above: every
    number the SLO path derives (budget, burn, alerts, exhaustion) then follows from them alone.

    `total` is the events (or slices) of every part with data, `good` what the composite's error
    ratio leaves of them; coverage is the parts' mean."""
    target = target_ratio([(p.weight, p.target_ratio) for p in parts])
    out: dict[timedelta, WindowCounts] = {}
    for window in windows:
        burns = [
            (p.weight, budget.burn_rate(budget.sli_ratio(p.counts[window], method), p.target_ratio))
            for p in parts
        ]
        burn = burn_rate(burns)
        covered = sum((p.counts[window].covered for p in parts), timedelta(0)) / max(1, len(parts))
        span = max((p.counts[window].span for p in parts), default=window)
        if burn is None:
            out[window] = WindowCounts(covered=covered, span=span)
            continue
        events = sum(
            _events(p.counts[window], method) for p, (_, b) in zip(parts, burns, strict=True) if b is not None
        )
        # the error ratio is capped at 1 (all failed): a burn beyond 1 / (1 - target) is not a ratio
        good = events * (1.0 - min(1.0, burn * (1.0 - target)))
        out[window] = WindowCounts(
            good=good,
            total=events,
            good_slices=good,
            slices=events,
            ratio_sum=good,
            covered=covered,
            span=span,
        )
    return out


@dataclass(frozen=True)
class PartBuckets:
    """One part's buckets over the window, with its weight and its own objective."""

    weight: float
    target_ratio: float
    buckets: Sequence[Bucket]


def budget_back(
    parts: Sequence[PartBuckets], method: BudgetingMethod, duration: timedelta, now: datetime
) -> datetime | None:
    """When a spent composite budget over a rolling window of `duration` is back above zero if
    nothing more fails: once enough of its parts' failures have aged out of the window, at the
    traffic each part holds now (`bot.impact.budget_back` for one SLO). The budget spent is the
    weighted mean of the parts' (a part without events left out, as in `combine`), so which
    part's failures leave first and what each weighs decide when. None: no part has events."""
    start = now - duration
    weights: list[float] = []
    allowed: list[float] = []
    bad: list[float] = []
    leaving: list[tuple[datetime, int, float]] = []  # (when it leaves the window - duration, part, bad)
    for part in parts:
        inside = [b for b in part.buckets if b.end > start and b.start < now]
        counts = [budget.bad_and_events(b, method) for b in inside]
        events = sum(c[1] for c in counts)
        if events <= 0:
            continue
        index = len(weights)
        weights.append(part.weight)
        allowed.append((1.0 - part.target_ratio) * events)
        bad.append(sum(c[0] for c in counts))
        leaving += [(b.end, index, lost) for b, (lost, _) in zip(inside, counts, strict=True) if lost > 0]
    total = sum(weights)
    if total <= 0:
        return None

    def spent() -> float:
        return sum(w * b / a for w, b, a in zip(weights, bad, allowed, strict=True)) / total

    if spent() <= 1.0:
        return now
    for end, index, lost in sorted(leaving):
        bad[index] -= lost
        if spent() <= 1.0:
            return end + duration
    return None


def _events(counts: WindowCounts, method: BudgetingMethod) -> float:
    return counts.total if method is BudgetingMethod.OCCURRENCES else counts.slices


def weights_shown(slo: SLO) -> list[tuple[str, float, float]]:
    """Each part as (name, share of the weight, target ratio), for the places parts are listed."""
    total = sum(p.weight for p in slo.parts) or 1.0
    return [(p.slo.name, p.weight / total, p.slo.objective.target_ratio) for p in slo.parts]
