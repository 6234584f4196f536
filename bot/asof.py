"""`check --at`: SLOs as of a past moment, read-only, with the numbers a fresh database would give.

Stored buckets are read where they answer exactly and the source is asked for the rest; nothing is
written, so the live alerts and the status `slo-bot status` and Slack show stay as they are.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from sqlalchemy import Engine
from sqlmodel import Session

from bot import breaches, composite, evaluation, status
from bot.adjustments import Interval, excluded_counts, subtract
from bot.alerting import FIRING
from bot.buckets import FetchRange, fetches_coarse_directly, tier_ranges, window_counts
from bot.budget import Status
from bot.catalogue import CatalogueError
from bot.catalogue.stored import slo_of
from bot.domain import Bucket
from bot.jobs import BAD_QUERY, CONFIG, INTERNAL, UNAVAILABLE, Outcome, describe_error
from bot.periods import period_bounds
from bot.sources.base import BadQuery, SourceError
from bot.sources.pool import SourcePool
from bot.status import Assessment
from bot.store import adjustments as adjustment_store
from bot.store import groups as group_store
from bot.store import history, repo
from bot.store.models import SLORecord

log = logging.getLogger(__name__)


def evaluate_as_of(
    engine: Engine,
    *,
    at: datetime,
    sources: SourcePool,
    concurrency: int,
    names: Sequence[str] | None = None,
) -> list[Outcome]:
    """`check --at`: every SLO (or those named) as of `at`, with the numbers a fresh database gives.

    Read-only: stored buckets are read where they answer exactly; what they cannot (a range never
    stored, rows rolled up further than a fresh database would keep them as of `at`, a bucket cut by
    a window's start or by `at`) is asked of the source. Nothing is written: no alert moves, nothing
    is posted, and the SLO's newest status stays the live one. `alerts` lists the alerts firing at
    `at` by the data alone.
    """
    with Session(engine) as session:
        records = repo.list_slos(session=session)
        exclusions = adjustment_store.load_exclusions(session=session)
    if names is not None:
        records = [r for r in records if r.name in set(names)]
    outcomes: list[Outcome] = []
    for record in records:
        if record.group_by:  # members are stored with their group's tick only
            why = "check --at does not evaluate grouped SLOs (slo-bot/group-by) yet; check without --at"
            outcomes.append(Outcome(record.name, record.service, None, None, why, CONFIG))
            continue
        try:
            slo = slo_of(record)
            plan = evaluation.make_plan(
                slo, record.model_copy(update={"covered_from": None, "covered_to": None}), at, exclusions
            )
        except CatalogueError as err:
            problems = "; ".join(f"{p.path}: {p.message}" for p in err.problems) or "not buildable"
            outcomes.append(Outcome(record.name, record.service, None, None, problems, CONFIG))
            continue
        except Exception as err:
            log.exception("%s: cannot plan its evaluation", record.name)
            outcomes.append(Outcome(record.name, record.service, None, None, describe_error(err), CONFIG))
            continue
        try:
            buckets, warnings = _parts_as_of(engine, record, plan, sources)
        except SourceError as err:
            kind = BAD_QUERY if isinstance(err, BadQuery) else UNAVAILABLE
            outcomes.append(Outcome(record.name, record.service, slo, None, str(err), kind))
            continue
        except Exception as err:
            log.exception("%s: cannot evaluate as of %s", record.name, at)
            outcomes.append(Outcome(record.name, record.service, slo, None, describe_error(err), INTERNAL))
            continue
        excluded = plan.excluded
        assessment = _assess_in_memory(plan, buckets, plan.end, plan.now, warnings, excluded)
        alerts = _alerts_as_of(plan, buckets, assessment, excluded)
        own = _parts_assessed(plan, buckets, excluded) if slo.parts else ()
        outcomes.append(
            Outcome(record.name, record.service, slo, assessment.status, alerts=alerts, parts=own)
        )
    return sorted(outcomes, key=lambda o: o.name)


Parted = tuple[list[Bucket], ...]  # the buckets of an SLO: one list, or one per part of a composite


def _parts_as_of(
    engine: Engine, record: SLORecord, plan: evaluation.Plan, sources: SourcePool
) -> tuple[Parted, tuple[str, ...]]:
    """`_buckets_as_of` of an SLO, or of each part of a composite (from its part's row, if any)."""
    if not plan.slo.parts:
        buckets, warnings = _buckets_as_of(engine, record, plan, sources)
        return (buckets,), warnings
    with Session(engine) as session:
        rows = {
            r.name: r
            for r in group_store.members(session=session, group_ids=[record.id or 0])[record.id or 0]
        }
    found: list[list[Bucket]] = []
    notes: list[str] = []
    for part in plan.slo.parts:
        blank = record.model_copy(update={"covered_from": None, "covered_to": None})  # ask it all
        row = rows.get(part.slo.name, blank)
        buckets, warnings = _buckets_as_of(engine, row, replace(plan, slo=part.slo), sources)
        found.append(buckets)
        notes += warnings
    return tuple(found), tuple(notes)


def _buckets_as_of(
    engine: Engine, record: SLORecord, plan: evaluation.Plan, sources: SourcePool
) -> tuple[list[Bucket], tuple[str, ...]]:
    """The buckets [plan.needed_from, plan.end) of an evaluation at plan.end: stored ones where they
    hold, fetched ones where nothing is stored, and fine ones wherever a window's start, the
    period's start or the end cuts a coarser bucket (which would otherwise count in proportion)."""
    assert record.id is not None
    fine = plan.tiers[0].resolution
    covered_from, covered_to = repo.utc(record.covered_from), repo.utc(record.covered_to)
    warnings: list[str] = []
    base: list[Bucket] = []
    needed: list[FetchRange] = []  # must come from the source
    direct = fetches_coarse_directly(plan.slo)
    if covered_from is None or covered_to is None or covered_to <= plan.needed_from:
        needed = list(plan.ranges)  # nothing stored helps: what a fresh database asks
    else:
        with Session(engine) as session:
            base = [
                b
                for b in history.load_buckets(session=session, slo_id=record.id, since=plan.needed_from)
                if covered_from <= b.start and b.end <= covered_to and b.start < plan.end
            ]
        if plan.needed_from < covered_from:
            needed += tier_ranges(plan.needed_from, covered_from, plan.end, plan.tiers, direct)
        if covered_to < plan.end:
            needed += tier_ranges(max(covered_to, plan.needed_from), plan.end, plan.end, plan.tiers, direct)
    for rng in needed:
        notes: list[str] = []
        fetched, clamped = evaluation.fetch_buckets(plan.slo, sources.get, rng, notes)
        base += fetched
        if clamped:
            notes.append(f"{clamped} bucket(s) from {rng.start:%Y-%m-%d %H:%M} reported more good than total")
        warnings += [f"data quality: {note}" for note in notes]
    # stored rows rolled up further than a fresh database keeps them as of plan.end: its resolutions
    refine = []
    for layer in tier_ranges(plan.needed_from, plan.end, plan.end, plan.tiers, direct):
        coarse = [b for b in base if layer.start <= b.start < layer.end and b.resolution > layer.step]
        if coarse:
            refine.append(FetchRange(coarse[0].start, min(coarse[-1].end, layer.end), layer.step))
    base = _refined(plan, sources, sorted(base, key=lambda b: b.start), refine, warnings)
    # then every coarser bucket a window's start, the period's start or the end cuts, at the finest
    cuts = {plan.end - w for w in plan.policy.windows} | {plan.period_start, plan.end}
    refine = [
        FetchRange(b.start, min(b.end, plan.end), fine)
        for b in base
        if b.resolution > fine and any(b.start < cut < b.end for cut in cuts)
    ]
    return _refined(plan, sources, base, refine, warnings), tuple(warnings)


def _refined(
    plan: evaluation.Plan,
    sources: SourcePool,
    base: list[Bucket],
    ranges: Sequence[FetchRange],
    warnings: list[str],
) -> list[Bucket]:
    """`base` with each range's buckets replaced by ones fetched at the range's step, unless the source
    no longer holds that range at all (retention): then the stored ones stay, counted in proportion."""
    replacements: list[tuple[FetchRange, list[Bucket]]] = []
    for rng in ranges:
        notes: list[str] = []
        try:
            fetched, _ = evaluation.fetch_buckets(plan.slo, sources.get, rng, notes)
        except SourceError as err:
            warnings.append(f"{rng.start:%Y-%m-%d %H:%M}: counted in proportion ({err})")
            continue
        stored = any(b.covered for b in base if rng.start <= b.start < rng.end)
        if notes and stored:  # a partial answer: the complete stored buckets, in proportion
            warnings.append(f"{rng.start:%Y-%m-%d %H:%M}: counted in proportion ({'; '.join(notes)})")
        elif any(f.covered for f in fetched) or not stored:
            warnings += [f"data quality: {note}" for note in notes]
            replacements.append((rng, fetched))
        else:  # the source no longer holds it (retention): the stored buckets, in proportion
            warnings.append(f"{rng.start:%Y-%m-%d %H:%M}: counted in proportion from stored data")
    kept = [b for b in base if not any(r.start < b.end and b.start < r.end for r, _ in replacements)]
    return sorted(kept + [b for _, fetched in replacements for b in fetched], key=lambda b: b.start)


def _parts_assessed(
    plan: evaluation.Plan, buckets: Parted, excluded: Sequence[Interval]
) -> tuple[tuple[str, Status], ...]:
    """A composite's parts' own statuses, by name, as its live evaluation keeps them in their snapshots."""
    return tuple(
        (
            p.slo.name,
            _assess_in_memory(replace(plan, slo=p.slo), (b,), plan.end, plan.now, (), excluded).status,
        )
        for p, b in zip(plan.slo.parts, buckets, strict=True)
    )


def _assess_in_memory(
    plan: evaluation.Plan,
    buckets: Parted,
    end: datetime,
    now: datetime,
    warnings: tuple[str, ...] = (),
    excluded: Sequence[Interval] = (),
) -> Assessment:
    period_start, period_end = period_bounds(plan.slo.window, end)
    period_span = end - period_start
    windows = [*plan.policy.windows, period_span]
    own = [window_counts(b, end, windows) for b in buckets]
    if excluded:  # each part's (or the SLO's) events in the excluded time left out of its own counts
        own = [
            subtract(c, excluded_counts(b, excluded, end, windows)) for c, b in zip(own, buckets, strict=True)
        ]
    if plan.slo.parts:
        shares = [
            composite.PartCounts(p.weight, p.slo.objective.target_ratio, c)
            for p, c in zip(plan.slo.parts, own, strict=True)
        ]
        counts = composite.combine(shares, plan.slo.budgeting_method, windows)
    else:
        counts = own[0]
    return status.assess(
        plan.slo,
        plan.policy,
        counts,
        now=now,
        period_start=period_start,
        period_end=period_end,
        period_span=period_span,
        warnings=warnings,
    )


AS_OF_LOOKBACK = timedelta(hours=6)  # how far back `check --at` looks for when an alert began


def _alerts_as_of(
    plan: evaluation.Plan, buckets: Parted, assessment: Assessment, excluded: Sequence[Interval]
) -> list[dict[str, str | None]]:
    """The alerts that would be firing at `plan.end`, with when they fired, from the data alone.

    A condition fires once it has held for its alertAfter; a budget alert stays while in its
    hysteresis band. Each condition is followed back one fine step at a time (at most
    AS_OF_LOOKBACK) to find when it began.
    """
    active = {s.key: s for s in assessment.signals if s.active}
    began = dict.fromkeys(active, plan.end)
    step = plan.tiers[0].resolution
    following = set(active)
    at = plan.end
    while following and at - step >= plan.end - AS_OF_LOOKBACK:
        at -= step
        then = {s.key: s for s in _assess_in_memory(plan, buckets, at, at, (), excluded).signals}
        for key in list(following):
            signal = then.get(key)
            if signal is not None and (signal.active or signal.hold):
                began[key] = at
            else:
                following.discard(key)
    # grouped as the live path groups them: one breach per kind, at its most severe signal; budget
    # thresholds crossed during a burn breach are notices on it, not a breach of their own
    kinds: dict[str, list[tuple[str, datetime, bool]]] = {}
    for key, signal in active.items():
        fired = began[key] + signal.alert_after
        if fired <= plan.end:
            kinds.setdefault(breaches.kind_of(key), []).append((key, fired, key in following))
    if breaches.BURN in kinds:
        kinds.pop(breaches.BUDGET, None)
    alerts = []
    for found in kinds.values():
        first = min(found, key=lambda f: f[1])
        unknown = any(f[2] for f in found)  # began before the look-back: when is not known
        since = None if unknown else first[1].isoformat().replace("+00:00", "Z")
        alerts.append({"severity": breaches.top([f[0] for f in found]), "state": FIRING, "since": since})
    return sorted(alerts, key=lambda a: (a["since"] or "", a["severity"] or ""))
