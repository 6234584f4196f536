"""Time buckets of event counts: which resolution each age is kept at, what to fetch, rollups, sums.

Recent data is kept at fine resolution so every burn-rate window is exact; older data is rolled up to
hourly buckets so the rows per SLO stay bounded. Pure functions: `now` comes in as an argument.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from bot.budget import WindowCounts
from bot.domain import SLO, Bucket, BudgetingMethod, IndicatorKind, Objective

MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Late samples (scrape delay, remote-write lag) land in the last minutes: refetch them every tick.
SETTLE = timedelta(minutes=5)


@dataclass(frozen=True)
class Tier:
    """Buckets of `resolution` are kept while younger than `keep` (the last tier keeps the rest)."""

    resolution: timedelta
    keep: timedelta | None


def floor_time(at: datetime, step: timedelta) -> datetime:
    seconds = int((at - EPOCH).total_seconds())
    size = int(step.total_seconds())
    return EPOCH + timedelta(seconds=seconds - seconds % size)


def fine_resolution(slo: SLO) -> timedelta:
    """Timeslice SLOs store one bucket per slice; everything else per minute."""
    window = slo.objective.timeslice_window
    if slo.budgeting_method is not BudgetingMethod.OCCURRENCES and window:
        return max(window, MINUTE)
    return MINUTE


def tiers_for(slo: SLO, longest_window: timedelta) -> tuple[Tier, ...]:
    """1-minute buckets for the last 6 h, 5-minute ones up to the longest burn window, hourly after.

    Tiers finer than the SLO's timeslice are skipped. Each tier keeps one hour more than the window
    it serves, so a window never starts inside a coarser bucket than its own tier.
    """
    fine = fine_resolution(slo)
    candidates = [
        Tier(MINUTE, timedelta(hours=7)),
        Tier(timedelta(minutes=5), longest_window + HOUR),
        Tier(HOUR, None),
    ]
    kept = [t for t in candidates if t.resolution >= fine and t.resolution % fine == timedelta(0)]
    if kept[0].resolution != fine:
        kept.insert(0, Tier(fine, longest_window + HOUR))
    return tuple(kept)


def fetches_coarse_directly(slo: SLO) -> bool:
    """Event counters sum exactly at any resolution, so old ranges are asked at the tier's own step.

    Slices and thresholds are decided per slice, and a gauge (`counter: false`) is a value at an
    instant, so those SLOs always fetch at the fine step and the store rolls them up: the same data
    gives the same SLI whatever tier a minute falls in.
    """
    indicator = slo.indicator
    return (
        indicator.kind is IndicatorKind.RATIO
        and indicator.counter
        and slo.budgeting_method is BudgetingMethod.OCCURRENCES
    )


@dataclass(frozen=True)
class FetchRange:
    start: datetime
    end: datetime
    step: timedelta


def tier_ranges(
    start: datetime, end: datetime, now: datetime, tiers: Sequence[Tier], direct: bool
) -> list[FetchRange]:
    """Split [start, end) by the tier each part belongs to; aligned to each tier's resolution."""
    ranges: list[FetchRange] = []
    upper = end
    for index, tier in enumerate(tiers):
        if upper <= start:
            break
        lower = start if tier.keep is None else max(start, now - tier.keep)
        step = tier.resolution if direct else tiers[0].resolution
        if index + 1 < len(tiers):
            # align the boundary to the next (coarser) tier so its rollup groups are complete
            lower = max(start, floor_time(lower, tiers[index + 1].resolution))
        lower = floor_time(lower, step)
        if lower < upper:
            ranges.append(FetchRange(lower, upper, step))
        upper = min(upper, lower)  # [start, end) may lie wholly in an older tier than `now`'s
    return sorted(ranges, key=lambda r: r.start)


def plan_fetches(
    *,
    needed_from: datetime,
    now: datetime,
    covered_from: datetime | None,
    covered_to: datetime | None,
    tiers: Sequence[Tier],
    direct: bool,
) -> list[FetchRange]:
    """What to ask the source so [needed_from, now) is stored, given what is stored already."""
    fine = tiers[0].resolution
    now = floor_time(now, fine)
    if covered_from is None or covered_to is None or covered_to < needed_from:
        return tier_ranges(needed_from, now, now, tiers, direct)
    plan: list[FetchRange] = []
    if needed_from < covered_from:
        plan += tier_ranges(needed_from, covered_from, now, tiers, direct)
    if now > covered_to - SETTLE:
        restart = floor_time(covered_to - SETTLE, fine)
        if tiers[0].keep is not None and restart < now - tiers[0].keep:
            # after a long pause (the bot was down) stored rows may be coarser than the tier the
            # restart falls in now: refetch from a whole hour, which no stored bucket straddles
            restart = floor_time(restart, tiers[-1].resolution)
        plan += tier_ranges(max(restart, needed_from), now, now, tiers, direct)
    return plan


def bucket_from_sample(
    slo: SLO,
    start: datetime,
    resolution: timedelta,
    *,
    good: float | None = None,
    total: float | None = None,
    value: float | None = None,
) -> Bucket:
    """Turn what a source answered for one step into a bucket; None everywhere means no data.

    Ratio metrics give `good`/`total` counts; raw and threshold metrics give one `value` per slice.
    """
    objective = slo.objective
    kind = slo.indicator.kind
    if kind is IndicatorKind.RATIO:
        if total is None or good is None:
            return Bucket(start, resolution)
        good = min(good, total)  # good > total is a data-quality problem the caller reports
        ratio = good / total if total > 0 else None
    else:
        if value is None:
            return Bucket(start, resolution)
        ratio = _value_ratio(slo, objective, value)
        good, total = ratio, 1.0
    if ratio is None:  # the source has the series but no traffic: covered, zero events
        return Bucket(start, resolution, good=0.0, total=0.0, covered=resolution)
    slice_target = objective.timeslice_target_ratio
    good_slice = 1.0 if slice_target is None or ratio >= slice_target else 0.0
    return Bucket(
        start,
        resolution,
        good=good,
        total=total,
        covered=resolution,
        good_slices=good_slice,
        slices=1.0,
        ratio_sum=ratio,
    )


def _value_ratio(slo: SLO, objective: Objective, value: float) -> float:
    if slo.indicator.kind is IndicatorKind.THRESHOLD:
        assert objective.op is not None and objective.value is not None
        return 1.0 if objective.op.holds(value, objective.value) else 0.0
    ratio = max(0.0, min(1.0, value))
    return 1.0 - ratio if slo.indicator.raw_type == "failure" else ratio


def rollup(buckets: Iterable[Bucket], into: timedelta) -> list[Bucket]:
    """Merge buckets into coarser ones of `into` (aligned); missing parts simply stay uncovered."""
    merged: dict[datetime, Bucket] = {}
    for b in buckets:
        key = floor_time(b.start, into)
        acc = merged.get(key)
        if acc is None:
            merged[key] = replace(b, start=key, resolution=into)
        else:
            merged[key] = Bucket(
                key,
                into,
                good=acc.good + b.good,
                total=acc.total + b.total,
                covered=acc.covered + b.covered,
                good_slices=acc.good_slices + b.good_slices,
                slices=acc.slices + b.slices,
                ratio_sum=acc.ratio_sum + b.ratio_sum,
            )
    return [merged[k] for k in sorted(merged)]


def window_counts(
    buckets: Sequence[Bucket], end: datetime, windows: Sequence[timedelta]
) -> dict[timedelta, WindowCounts]:
    """Sum the buckets of each window [end - w, end) in one pass from the newest bucket back.

    A bucket cut by a window's start is counted in proportion to the part inside: only the SLO
    period's start ever falls inside a coarse bucket, since tiers keep fine data past every window.
    `buckets` must be sorted by start.
    """
    order = sorted(set(windows))
    result: dict[timedelta, WindowCounts] = {}
    acc = [0.0] * 6  # good, total, good_slices, slices, ratio_sum, covered seconds
    pending = list(order)
    for b in reversed(buckets):
        if b.start >= end:
            continue
        while pending and b.start < end - pending[0]:
            w = pending.pop(0)
            result[w] = _counts_with_partial(acc, b, end - w, end, w)
        if not pending:
            break
        acc = _add(acc, b, _overlap(b, b.start, end))
    for w in pending:
        result[w] = _counts_from(acc, w)
    return result


def _overlap(b: Bucket, start: datetime, end: datetime) -> float:
    size = b.resolution.total_seconds()
    inside = (min(b.end, end) - max(b.start, start)).total_seconds()
    return max(0.0, min(1.0, inside / size)) if size else 0.0


def _add(acc: list[float], b: Bucket, share: float) -> list[float]:
    return [
        acc[0] + b.good * share,
        acc[1] + b.total * share,
        acc[2] + b.good_slices * share,
        acc[3] + b.slices * share,
        acc[4] + b.ratio_sum * share,
        acc[5] + b.covered.total_seconds() * share,
    ]


def _counts_with_partial(
    acc: list[float], b: Bucket, start: datetime, end: datetime, span: timedelta
) -> WindowCounts:
    share = _overlap(b, start, end)
    return _counts_from(_add(acc, b, share) if share else acc, span)


def _counts_from(acc: list[float], span: timedelta) -> WindowCounts:
    return WindowCounts(
        good=acc[0],
        total=acc[1],
        good_slices=acc[2],
        slices=acc[3],
        ratio_sum=acc[4],
        covered=timedelta(seconds=acc[5]),
        span=span,
    )
