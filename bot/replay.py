"""Replay the alert policy over past data: every transition it would have made, and what each cost.

Reads history once at the SLO's fine resolution (source first, stored buckets where the source has
none, e.g. past its retention), keeps prefix sums, and runs the same `bot.status.assess` and
`bot.alerting.step` as the scheduler at every step. Writes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import accumulate

from bot import alerting, breaches, budget, composite, impact, policy
from bot.adjustments import Interval
from bot.alerting import FIRING, OpenAlert, Transition
from bot.buckets import FetchRange, fine_resolution, floor_time
from bot.budget import WindowCounts
from bot.domain import SLO, Bucket
from bot.evaluation import SourceFor, fetch_buckets
from bot.periods import period_bounds, period_length
from bot.sources.base import SourceError
from bot.status import assess

_FIELDS = ("good", "total", "good_slices", "slices", "ratio_sum", "covered")


@dataclass(frozen=True)
class Episode:
    """One breach from opening to its end (or to the end of the replay)."""

    slo: str
    number: int  # within the replay, in opening order
    kind: str  # burn | no-data | budget
    key: str  # its highest severity
    fired_at: datetime
    resolved_at: datetime | None
    onset: datetime | None  # when the budget began burning faster than it lasts (burn > 1)
    budget_spent_ratio: float | None  # of the period's budget (`bot.impact`); None: no events

    @property
    def detection_delay(self) -> timedelta | None:
        return None if self.onset is None else self.fired_at - self.onset


@dataclass(frozen=True)
class Replay:
    transitions: tuple[Transition, ...]  # of the signals
    episodes: tuple[Episode, ...]  # the breaches
    breach_of: Mapping[int, int] = field(default_factory=dict)  # transition index -> breach number


class History:
    """Prefix sums of one SLO's buckets on a regular grid of `resolution`."""

    def __init__(
        self,
        start: datetime,
        resolution: timedelta,
        buckets: Sequence[Bucket],
        excluded: Sequence[Interval] = (),
    ) -> None:
        """`excluded` (maintenance windows, refunds) counts neither as good nor as bad: a slot keeps
        the share of its counts outside it, and the excluded seconds are summed beside."""
        self.start = start
        self.resolution = resolution
        size = int(resolution.total_seconds())
        slots = {int((b.start - start).total_seconds()) // size: b for b in buckets}
        count = max(slots) + 1 if slots else 0
        end = start + count * resolution
        columns: list[list[float]] = [[0.0] * count for _ in (*_FIELDS, "excluded")]
        for lower, upper in excluded:
            at = max(floor_time(lower, resolution), start)
            while at < upper and at < end:
                inside = (min(at + resolution, upper) - max(at, lower)).total_seconds()
                columns[-1][int((at - start) / resolution)] += max(0.0, inside)
                at += resolution
        for index, b in slots.items():
            if index < 0:
                continue
            kept = 1.0 - min(1.0, columns[-1][index] / size)
            for column, value in zip(
                columns,
                (b.good, b.total, b.good_slices, b.slices, b.ratio_sum, b.covered.total_seconds()),
                strict=False,
            ):
                column[index] = value * kept
        self.sums = [[0.0, *accumulate(c)] for c in columns]
        self.length = count

    def index(self, at: datetime) -> int:
        return max(0, min(self.length, int((at - self.start) / self.resolution)))

    def counts(self, start: datetime, end: datetime) -> WindowCounts:
        a, b = self.index(start), self.index(end)
        good, total, good_slices, slices, ratio_sum, covered, excluded = (s[b] - s[a] for s in self.sums)
        return WindowCounts(
            good,
            total,
            good_slices,
            slices,
            ratio_sum,
            timedelta(seconds=covered),
            end - start,
            timedelta(seconds=excluded),
        )

    def is_burning(self, index: int, target_ratio: float) -> bool:
        """Whether the slot at `index` lost more than the budget allows (burn > 1)."""
        total = self.sums[1][index + 1] - self.sums[1][index]
        good = self.sums[0][index + 1] - self.sums[0][index]
        return total > 0 and (total - good) / total > 1 - target_ratio


class CompositeHistory:
    """A composite SLO's parts' histories read as one: each window's counts combined by the parts'
    weights (`bot.composite.combine`), as the live evaluation combines the stored ones."""

    def __init__(self, slo: SLO, parts: Sequence[History]) -> None:
        self.slo = slo
        self.parts = tuple(parts)
        self.start = parts[0].start
        self.resolution = parts[0].resolution  # the parts share the composite's fine resolution
        self.length = max(h.length for h in parts)

    def index(self, at: datetime) -> int:
        return max(0, min(self.length, int((at - self.start) / self.resolution)))

    def counts(self, start: datetime, end: datetime) -> WindowCounts:
        span = end - start
        shares = [
            composite.PartCounts(p.weight, p.slo.objective.target_ratio, {span: h.counts(start, end)})
            for p, h in zip(self.slo.parts, self.parts, strict=True)
        ]
        return composite.combine(shares, self.slo.budgeting_method, [span])[span]

    def is_burning(self, index: int, target_ratio: float) -> bool:
        at = self.start + index * self.resolution
        counts = self.counts(at, at + self.resolution)
        burn = budget.burn_rate(budget.sli_ratio(counts, self.slo.budgeting_method), target_ratio)
        return burn is not None and burn > 1


def load_history(
    slo: SLO,
    source_for: SourceFor,
    start: datetime,
    end: datetime,
    stored: Callable[[datetime, datetime], Sequence[Bucket]] | None = None,
    excluded: Sequence[Interval] = (),
) -> History:
    """History of [start, end) at fine resolution: the source's, filled from `stored` where absent;
    `excluded` time does not count (`History`)."""
    resolution = fine_resolution(slo)
    start, end = floor_time(start, resolution), floor_time(end, resolution)
    try:
        fetched, _clamped = fetch_buckets(slo, source_for, FetchRange(start, end, resolution))
    except SourceError:
        if stored is None:
            raise
        fetched = []
    have = {b.start for b in fetched if b.covered}
    merged = [b for b in fetched if b.covered]
    if stored is not None:
        for b in stored(start, end):
            if b.start not in have:
                merged.extend(_spread(b, resolution, have))
    kept = [(max(a, start), min(b, end)) for a, b in excluded if a < end and b > start]
    return History(start, resolution, sorted(merged, key=lambda b: b.start), kept)


def _spread(b: Bucket, resolution: timedelta, have: set[datetime]) -> Iterator[Bucket]:
    """A stored (maybe coarser) bucket as fine ones, evenly, where the source gave nothing."""
    parts = max(1, int(b.resolution / resolution))
    for i in range(parts):
        at = b.start + i * resolution
        if at not in have:
            yield Bucket(
                at,
                resolution,
                b.good / parts,
                b.total / parts,
                b.covered / parts,
                b.good_slices / parts,
                b.slices / parts,
                b.ratio_sum / parts,
            )


def lookback(slo: SLO, at: datetime) -> timedelta:
    """How far before the first step history must reach: the period and every policy window."""
    rules = policy.policy_for(slo, period_length(slo.window, at))
    period_start, _ = period_bounds(slo.window, at)
    return max(at - period_start, *rules.windows)


def load_composite_history(
    slo: SLO,
    source_for: SourceFor,
    start: datetime,
    end: datetime,
    stored: Callable[[str], Callable[[datetime, datetime], Sequence[Bucket]] | None],
    excluded: Sequence[Interval] = (),
) -> CompositeHistory:
    """`load_history` of each part of a composite SLO (`stored`: a part's stored buckets by name);
    the composite's `excluded` time left out of every part's."""
    return CompositeHistory(
        slo,
        [load_history(p.slo, source_for, start, end, stored(p.slo.name), excluded) for p in slo.parts],
    )


def replay(
    slo: SLO, history: History | CompositeHistory, start: datetime, end: datetime, step: timedelta
) -> Replay:
    """Run the policy at every `step` in [start, end]; signals and breaches start closed."""
    # burn thresholds scale with the period's real length: a calendar month's change month by month
    policies: dict[timedelta, policy.Policy] = {}
    current: dict[str, OpenAlert | None] = {}
    transitions: list[Transition] = []
    breach_of: dict[int, int] = {}
    open_breaches: dict[str, breaches.OpenBreach] = {}
    numbers: dict[str, int] = {}  # open breach kind -> its number
    opened: dict[int, breaches.Change] = {}
    episodes: list[Episode] = []
    at = floor_time(start, history.resolution)
    while at <= end:
        period_start, period_end = period_bounds(slo.window, at)
        length = period_length(slo.window, at)
        rules = policies.get(length) or policies.setdefault(length, policy.policy_for(slo, length))
        span = at - period_start
        counts = {w: history.counts(at - w, at) for w in {*rules.windows, span}}
        result = assess(
            slo,
            rules,
            counts,
            now=at,
            period_start=period_start,
            period_end=period_end,
            period_span=span,
        )
        stepped: list[Transition] = []
        for signal in result.signals:
            after, transition = alerting.step(slo.name, current.get(signal.key), signal, at)
            current[signal.key] = after
            if transition is not None:
                stepped.append(transition)
        firing = {k for k, a in current.items() if a is not None and a.state == FIRING}
        open_breaches, changes = breaches.advance(slo.name, open_breaches, stepped, firing, at)
        for change in changes:
            if change.event == breaches.OPENED:
                numbers[change.kind] = len(opened) + 1
                opened[numbers[change.kind]] = change
        # numbered before the breaches that ended are let go: the transition that ends one names it
        for transition in stepped:
            kind = breaches.kind_of(transition.key)
            if kind == breaches.BUDGET and breaches.BURN in numbers:
                kind = breaches.BURN  # a notice on the burn breach
            if kind in numbers:
                breach_of[len(transitions)] = numbers[kind]
            transitions.append(transition)
        for change in changes:
            if change.event == breaches.RESOLVED:
                number = numbers.pop(change.kind)
                episodes.append(_episode(slo, history, number, opened[number], change.severity, at))
        at += step
    for kind, number in numbers.items():
        episodes.append(_episode(slo, history, number, opened[number], open_breaches[kind].peak, None))
    return Replay(tuple(transitions), tuple(sorted(episodes, key=lambda e: e.number)), breach_of)


def _episode(
    slo: SLO,
    history: History | CompositeHistory,
    number: int,
    opening: breaches.Change,
    peak: str,
    resolved: datetime | None,
) -> Episode:
    until = resolved or history.start + history.length * history.resolution
    target = slo.objective.target_ratio
    fired_at = opening.at

    def sums_of(found: History | CompositeHistory) -> impact.WindowSums:
        return lambda windows: {w: found.counts(until - w, until) for w in windows}

    if isinstance(history, CompositeHistory):  # the weighted mean of its cost to each part, as live
        cost = composite.burn_rate(
            [
                (p.weight, impact.episode_cost(p.slo, peak, fired_at, until, sums_of(h)))
                for p, h in zip(slo.parts, history.parts, strict=True)
            ]
        )
    else:
        cost = impact.episode_cost(slo, peak, fired_at, until, sums_of(history))

    index = history.index(fired_at) - 1
    onset = None
    while index >= 0 and history.is_burning(index, target):
        onset = history.start + index * history.resolution
        index -= 1
    return Episode(
        slo.name,
        number,
        opening.kind,
        peak,
        fired_at,
        resolved,
        onset,
        cost,
    )
