"""One evaluation of one SLO: plan what to fetch, fetch it, store it, and compute its status.

Fetching (network) and storing (database) are separate steps so many SLOs can fetch in parallel
while one thread writes; each SLO's store step is one transaction.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from sqlmodel import Session

from bot import groups, parts, policy, status
from bot.adjustments import NONE as NO_EXCLUSIONS
from bot.adjustments import Exclusions, Interval
from bot.buckets import (
    HOUR,
    FetchRange,
    Tier,
    bucket_from_sample,
    fetches_coarse_directly,
    floor_time,
    plan_fetches,
    tiers_for,
)
from bot.budget import Status, WindowCounts
from bot.domain import SLO, Bucket, DataSource, IndicatorKind, MetricQuery
from bot.metrics import METRICS
from bot.periods import period_bounds, period_length
from bot.sources.base import BadQuery, GroupedSource, PartialAnswer, Source
from bot.status import Assessment
from bot.store import adjustments as adjustment_store
from bot.store import history, repo
from bot.store.models import SLORecord


@dataclass(frozen=True)
class Plan:
    slo: SLO
    policy: policy.Policy
    now: datetime  # the evaluation time as asked
    end: datetime  # `now` floored to the fine resolution: the newest complete bucket ends here
    period_start: datetime
    period_end: datetime
    needed_from: datetime
    tiers: tuple[Tier, ...]
    ranges: tuple[FetchRange, ...]
    exclusions: Exclusions = NO_EXCLUSIONS  # maintenance windows and refunds, of every SLO

    @property
    def excluded(self) -> tuple[Interval, ...]:
        """This SLO's time that counts neither as good nor as bad, within what its windows read."""
        return self.exclusions.of(self.slo, self.needed_from, self.end)


@dataclass(frozen=True)
class Fetched:
    ranges: tuple[FetchRange, ...]
    buckets: tuple[tuple[Bucket, ...], ...]  # one tuple per range
    warnings: tuple[str, ...] = field(default=())
    incomplete: tuple[FetchRange, ...] = field(default=())  # ask these again next tick
    parts: tuple[Fetched, ...] = field(default=())  # a composite SLO's: each part's, in its order


def make_plan(slo: SLO, record: SLORecord, now: datetime, exclusions: Exclusions = NO_EXCLUSIONS) -> Plan:
    window = slo.window
    rules, tiers, direct = _shape(slo, period_length(window, now))
    if _TIMES_AT[0] != now:  # (a new tick: the last one's are not asked again)
        _TIMES.clear()
        _TIMES_AT[0] = now
    key = (now, window, rules.windows, tiers, direct, record.covered_from, record.covered_to)
    times = _TIMES.get(key)
    if times is None:
        end = floor_time(now, tiers[0].resolution)
        period_start, period_end = period_bounds(window, end)
        needed_from = floor_time(min(period_start, end - max(rules.windows)), HOUR)
        planned = plan_fetches(
            needed_from=needed_from,
            now=end,
            covered_from=repo.utc(record.covered_from),
            covered_to=repo.utc(record.covered_to),
            tiers=tiers,
            direct=direct,
        )
        times = _TIMES[key] = (end, period_start, period_end, needed_from, tuple(planned))
    end, period_start, period_end, needed_from, ranges = times
    return Plan(slo, rules, now, end, period_start, period_end, needed_from, tiers, ranges, exclusions)


Shape = tuple[policy.Policy, tuple[Tier, ...], bool]  # the rules, the tiers, whether old ranges come coarse
# An SLO's plan shape by the SLO's identity: a tick plans every SLO, and `slo_of` builds an SLO once
# per definition, so its shape is worked out once too (an SLO object is hashed field by field, which
# costs as much as the shape: hence identity, with the object kept to make sure it is the same one)
_SHAPES: dict[int, tuple[SLO, timedelta, Shape]] = {}
_SHAPES_KEPT = 20_000
# A plan's times and ranges, by what they are worked out from: a tick plans every SLO at one `now`,
# and most SLOs share a period, windows, tiers and stored coverage, so each distinct set is worked out
# once a tick (planning 1,000 SLOs took 15-17 ms, now 6-7)
_TIMES: dict[tuple[object, ...], tuple[datetime, datetime, datetime, datetime, tuple[FetchRange, ...]]] = {}
_TIMES_AT: list[datetime | None] = [None]  # the `now` they are kept for (one tick's, a few dozen)


def _shape(slo: SLO, period: timedelta) -> Shape:
    """What a plan takes from the SLO alone and the length of its period (a month's varies)."""
    found = _SHAPES.get(id(slo))
    if found is not None and found[0] is slo and found[1] == period:
        return found[2]
    rules = policy.policy_for(slo, period)
    tiers = tiers_for(slo, max(rules.windows))
    direct = all(fetches_coarse_directly(s) for s in [p.slo for p in slo.parts] or [slo])
    if len(_SHAPES) >= _SHAPES_KEPT:  # definitions changed many times over: start again
        _SHAPES.clear()
    _SHAPES[id(slo)] = (slo, period, (rules, tiers, direct))
    return rules, tiers, direct


SourceFor = Callable[[DataSource], Source]


def fetch(plan: Plan, source_for: SourceFor) -> Fetched:
    """Ask the sources for every planned range. Raises SourceUnavailable / BadQuery untouched.

    A range answered in part (the source warned of missing data) or with more good than total
    events is kept, said in `warnings`, and listed in `incomplete` so the next tick asks again.
    A composite SLO asks for each of its parts (`Fetched.parts`); its own buckets stay empty."""
    if plan.slo.parts:
        found = [fetch(replace(plan, slo=p.slo), source_for) for p in plan.slo.parts]
        return Fetched(
            plan.ranges,
            tuple(() for _ in plan.ranges),
            tuple(w for f in found for w in f.warnings),
            tuple(dict.fromkeys(r for f in found for r in f.incomplete)),
            tuple(found),
        )
    results = []
    warnings: list[str] = []
    incomplete: list[FetchRange] = []
    for rng in plan.ranges:
        notes: list[str] = []
        buckets, clamped = fetch_buckets(plan.slo, source_for, rng, notes)
        results.append(tuple(buckets))
        if clamped:
            notes.append(
                f"{clamped} bucket(s) between {rng.start:%Y-%m-%d %H:%M} and {rng.end:%H:%M} "
                "reported more good than total events (counted as total for now)"
            )
        if notes:
            incomplete.append(rng)
            warnings += [f"data quality: {note}; asked again next tick" for note in notes]
    return Fetched(plan.ranges, tuple(results), tuple(warnings), tuple(incomplete))


@dataclass(frozen=True)
class GroupFetched:
    """What one evaluation of a grouped SLO fetched: per range, the buckets of every member seen."""

    ranges: tuple[FetchRange, ...]
    members: Mapping[tuple[str, ...], tuple[tuple[Bucket, ...] | None, ...]]  # None: not in that range
    warnings: tuple[str, ...] = field(default=())
    incomplete: tuple[FetchRange, ...] = field(default=())

    # the uncovered buckets of each range, made once for every member absent from it (buckets are
    # immutable: a group of hundreds of new members would otherwise hold a copy each)
    _absent: dict[FetchRange, tuple[Bucket, ...]] = field(default_factory=dict, compare=False, repr=False)

    def of(self, key: tuple[str, ...]) -> Fetched:
        """One member's share, as an SLO of its own would have fetched it: a range it is absent from
        is no data (uncovered buckets)."""
        buckets = self.members.get(key, (None,) * len(self.ranges))
        return Fetched(
            self.ranges,
            tuple(
                found if found is not None else self._uncovered(rng)
                for rng, found in zip(self.ranges, buckets, strict=True)
            ),
            self.warnings,
            self.incomplete,
        )

    def _uncovered(self, rng: FetchRange) -> tuple[Bucket, ...]:
        if rng not in self._absent:
            self._absent[rng] = tuple(Bucket(start, rng.step) for start in _step_starts(rng))
        return self._absent[rng]


def fetch_group(plan: Plan, source_for: SourceFor) -> GroupFetched:
    """`fetch` of a grouped SLO: each planned range asked once for all members."""
    labels = groups.labels_of(plan.slo)
    members: dict[tuple[str, ...], list[tuple[Bucket, ...] | None]] = {}
    warnings: list[str] = []
    incomplete: list[FetchRange] = []
    for i, rng in enumerate(plan.ranges):
        notes: list[str] = []
        found = fetch_group_buckets(plan.slo, labels, source_for, rng, notes)
        for key, (buckets, _) in found.items():
            members.setdefault(key, [None] * len(plan.ranges))[i] = tuple(buckets)
        clamped = sum(c for _, c in found.values())
        if clamped:
            notes.append(
                f"{clamped} bucket(s) between {rng.start:%Y-%m-%d %H:%M} and {rng.end:%H:%M} "
                "reported more good than total events (counted as total for now)"
            )
        if notes:
            incomplete.append(rng)
            warnings += [f"data quality: {note}; asked again next tick" for note in notes]
    return GroupFetched(
        plan.ranges, {k: tuple(v) for k, v in members.items()}, tuple(warnings), tuple(incomplete)
    )


def fetch_buckets(
    slo: SLO, source_for: SourceFor, rng: FetchRange, notes: list[str] | None = None
) -> tuple[list[Bucket], int]:
    """One bucket per step of `rng` (gaps as uncovered buckets), and how many said good > total.

    A partial answer is used as given; what the source warned of is added to `notes`."""

    def ask(metric: MetricQuery, counter: bool) -> dict[tuple[str, ...], dict[datetime, float]]:
        started = time.monotonic()
        try:
            return {
                (): source_for(metric.source).fetch_range(
                    metric, counter=counter, start=rng.start, end=rng.end, step=rng.step
                )
            }
        except PartialAnswer as partial:
            if notes is not None:
                notes.append(str(partial))
            return {(): partial.values}
        finally:  # failed queries too: a source that times out is a slow source
            METRICS.source_query_took(metric.source.name, time.monotonic() - started)

    buckets, clamped = _buckets(slo, rng, ask, grouped=False).get((), ([], 0))
    return buckets, clamped


def fetch_group_buckets(
    slo: SLO, labels: tuple[str, ...], source_for: SourceFor, rng: FetchRange, notes: list[str]
) -> dict[tuple[str, ...], tuple[list[Bucket], int]]:
    """`fetch_buckets` of every member of a grouped SLO seen in `rng`, by label values: one query
    per metric for all of them."""

    def ask(metric: MetricQuery, counter: bool) -> dict[tuple[str, ...], dict[datetime, float]]:
        started = time.monotonic()
        source = source_for(metric.source)
        if not isinstance(source, GroupedSource):
            raise BadQuery(f"DataSource {metric.source.name!r} ({metric.source.type}) cannot group SLOs")
        try:
            return source.fetch_range_groups(
                metric, counter=counter, start=rng.start, end=rng.end, step=rng.step, by=labels
            )
        except PartialAnswer as partial:
            notes.append(str(partial))
            return partial.groups
        finally:
            METRICS.source_query_took(metric.source.name, time.monotonic() - started)

    return _buckets(slo, rng, ask, grouped=True)


Asker = Callable[[MetricQuery, bool], dict[tuple[str, ...], dict[datetime, float]]]


def _buckets(
    slo: SLO, rng: FetchRange, ask: Asker, *, grouped: bool
) -> dict[tuple[str, ...], tuple[list[Bucket], int]]:
    """Buckets per member (one member, `()`, when not `grouped`) from the answers of `ask`."""
    indicator = slo.indicator
    steps = _step_starts(rng)
    ends = [start + rng.step for start in steps]  # the time each step's sample is keyed by
    # a step without data is the same uncovered bucket in every member (buckets are immutable: a
    # group's first cycle over a new source would otherwise hold a copy a member)
    uncovered = [Bucket(start, rng.step) for start in steps]
    out: dict[tuple[str, ...], tuple[list[Bucket], int]] = {}
    if indicator.kind is IndicatorKind.RATIO:
        assert indicator.total is not None
        totals = ask(indicator.total, indicator.counter)
        goods = ask(indicator.good, indicator.counter) if indicator.good is not None else None
        bads = None
        if goods is None:
            assert indicator.bad is not None
            bads = ask(indicator.bad, indicator.counter)
        for key in totals if grouped else [()]:
            total = totals.get(key, {})
            if goods is not None:
                good = goods.get(key, {})
            else:
                assert bads is not None
                bad = bads.get(key, {})
                # a bad-events series often appears only after the first error: absent means none
                good = {t: max(0.0, v - bad.get(t, 0.0)) for t, v in total.items()}
            if not indicator.counter:
                # a gauge (e.g. requests per second) stands for the whole step it was sampled for:
                # weighted by the step's seconds, every tier counts a minute alike
                seconds = rng.step.total_seconds()
                total = {t: v * seconds for t, v in total.items()}
                good = {t: v * seconds for t, v in good.items()}
            clamped = sum(1 for t, v in good.items() if v > total.get(t, v))
            buckets = [
                bucket_from_sample(slo, start, rng.step, good=good.get(end, 0.0), total=total[end])
                if end in total
                else empty
                for start, end, empty in zip(steps, ends, uncovered, strict=True)
            ]
            out[key] = (buckets, clamped)
        return out
    metric = indicator.raw if indicator.kind is IndicatorKind.RAW else indicator.threshold
    assert metric is not None
    answers = ask(metric, False)
    for key in answers if grouped else [()]:
        values = answers.get(key, {})
        out[key] = (
            [
                bucket_from_sample(slo, start, rng.step, value=values[end]) if end in values else empty
                for start, end, empty in zip(steps, ends, uncovered, strict=True)
            ],
            0,
        )
    return out


def _step_starts(rng: FetchRange) -> list[datetime]:
    count = int((rng.end - rng.start) / rng.step)
    return [rng.start + i * rng.step for i in range(count)]


def store(session: Session, record: SLORecord, plan: Plan, fetched: Fetched) -> None:
    """Write fetched buckets, roll old ones up, drop what no window reads any more."""
    store_many(session, [(record, plan, fetched)])


def store_many(session: Session, items: Sequence[tuple[SLORecord, Plan, Fetched]]) -> None:
    """`store` of many SLOs' fetches in a few statements for all: their buckets, roll-ups, trims
    and coverage. A composite SLO's parts are stored beside it, each as an SLO of its own in its
    own row (the composite holds no bucket: its coverage is what its queries have asked)."""
    items = [
        *items,
        *(
            (row, replace(plan, slo=part.slo), got)
            for record, plan, fetched in items
            if plan.slo.parts
            for row, part, got in zip(
                parts.records(session, record, plan.slo, plan.now), plan.slo.parts, fetched.parts, strict=True
            )
        ),
    ]
    history.replace_many(
        session=session,
        writes=[
            (record.id, rng.start, rng.end, buckets)
            for record, _, fetched in items
            if record.id is not None
            for rng, buckets in zip(fetched.ranges, fetched.buckets, strict=True)
        ],
    )
    rollups: list[history.RollUp] = []
    trims: list[tuple[int, datetime]] = []
    coverage = []
    for record, plan, fetched in items:
        assert record.id is not None
        old_from, old_to = repo.utc(record.covered_from), repo.utc(record.covered_to)
        made: list[datetime | None] = []  # where the tier before's roll-up of this tick merged from
        for finer, coarser in itertools.pairwise(plan.tiers):
            assert finer.keep is not None
            before = floor_time(plan.end - finer.keep, coarser.resolution)
            # the last roll-up's cut-off: no `finer` bucket is stored before it, but what is written now
            # and what the tier before merges now (a tier may be kept shorter than the finer one)
            last = None if old_to is None else floor_time(old_to - finer.keep, coarser.resolution)
            below = [r.start for r in fetched.ranges if r.step == finer.resolution and r.start < before]
            below += [floor_time(m, finer.resolution) for m in made if m is not None and m < before]
            if last != before or below or None in made:  # most ticks roll nothing up
                since = None if last is None or None in made else min([last, *below])
                rollups.append((record.id, finer.resolution, coarser.resolution, before, since))
                made = [since]
            else:
                made = []
        if old_from is None or old_from < plan.needed_from:
            trims.append((record.id, plan.needed_from))
        coverage.append((record.id, *_coverage(plan, fetched, old_from, old_to)))
    history.roll_up_many(session=session, asks=rollups)
    history.trim_many(session=session, asks=trims)
    repo.set_coverages(session=session, rows=coverage)


def _coverage(
    plan: Plan, fetched: Fetched, old_from: datetime | None, old_to: datetime | None
) -> tuple[datetime, datetime]:
    """The range the SLO's buckets cover once `fetched` is stored."""
    starts = [r.start for r in fetched.ranges]
    ends = [r.end for r in fetched.ranges]
    fresh = old_from is None or old_to is None or old_to < plan.needed_from
    covered_from = min(starts) if fresh and starts else min([*starts, old_from or plan.needed_from])
    covered_to = max([*ends, *([] if fresh or old_to is None else [old_to])], default=plan.end)
    covered_from = max(covered_from, plan.needed_from)
    for rng in fetched.incomplete:  # leave it outside the coverage: the next plan asks for it again
        if rng.end >= covered_to:
            covered_to = min(covered_to, rng.start)
        else:
            covered_from = max(covered_from, rng.end)
    return covered_from, max(covered_to, covered_from)


def windows_of(plan: Plan) -> list[timedelta]:
    """The windows an assessment sums: the policy's and the period so far."""
    return [*plan.policy.windows, plan.end - plan.period_start]


def assess(
    session: Session,
    record: SLORecord,
    plan: Plan,
    warnings: tuple[str, ...] = (),
    counts: Mapping[timedelta, WindowCounts] | None = None,
) -> Assessment:
    """The SLO's status and alert signals, from stored buckets only (`counts`: their sums over
    `windows_of(plan)`, when read already with other SLOs')."""
    assert record.id is not None
    period_span = plan.end - plan.period_start
    windows = windows_of(plan)
    of_parts: tuple[tuple[str, Status], ...] = ()
    if plan.slo.parts:  # the weighted sum of its parts' (whose own go in their snapshots)
        rows = parts.records(session, record, plan.slo, plan.now)
        counts, own = parts.counts(session, rows, plan.slo, plan.end, windows, plan.excluded)
        of_parts = parts.snapshot_parts(
            session,
            rows,
            plan.slo,
            plan.policy,
            own,
            now=plan.now,
            period_start=plan.period_start,
            period_end=plan.period_end,
            period_span=period_span,
        )
    else:
        if counts is None:
            counts = history.window_sums(session=session, slo_id=record.id, end=plan.end, windows=windows)
        counts = without_excluded(session, record.id, plan, counts)
    assessment = status.assess(
        plan.slo,
        plan.policy,
        counts,
        now=plan.now,
        period_start=plan.period_start,
        period_end=plan.period_end,
        period_span=period_span,
        warnings=warnings,
    )
    if of_parts:
        assessment = replace(assessment, parts=of_parts)
    if plan.slo.member_of is not None:
        # a label value going quiet (a route without traffic) is how members retire, not a breach
        kept = tuple(s for s in assessment.signals if s.key != policy.NO_DATA)
        assessment = replace(assessment, signals=kept)
    return assessment


def without_excluded(
    session: Session, slo_id: int, plan: Plan, counts: Mapping[timedelta, WindowCounts]
) -> dict[timedelta, WindowCounts]:
    """`counts` (sums of windows ending at plan.end) less what the SLO's excluded time holds."""
    return adjustment_store.subtract_excluded(
        session=session, slo_id=slo_id, excluded=plan.excluded, end=plan.end, counts=counts
    )
