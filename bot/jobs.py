"""Evaluate many SLOs: sources are queried in parallel (bounded), results stored one SLO at a time.

A failure belongs to its SLO: one broken query or unreachable source never stops the others.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import Engine
from sqlmodel import Session

from bot import alerting, episodes, evaluation, status
from bot.alerting import FIRING, Transition
from bot.app import SourcePool
from bot.buckets import FetchRange, fetches_coarse_directly, tier_ranges, window_counts
from bot.budget import Status
from bot.catalogue import CatalogueError, build_slos
from bot.domain import SLO, Bucket
from bot.metrics import METRICS
from bot.periods import period_bounds
from bot.policy import Signal
from bot.sources.base import BadQuery, SourceError
from bot.status import Assessment
from bot.store import alerts as alert_store
from bot.store import history, repo
from bot.store.models import AlertRecord, SLORecord

log = logging.getLogger(__name__)

UNAVAILABLE = "source_unavailable"  # retry next tick
BAD_QUERY = "bad_query"  # a human must fix the query or the DataSource
CONFIG = "config"  # the stored definition no longer builds (e.g. an unset variable)
INTERNAL = "internal"  # storing or alerting failed (the database, a hook): see the log


class TickHook(Protocol):
    """Runs inside an SLO's evaluation transaction, after its alerts moved (e.g. queue Slack messages).
    `open_alerts`: the SLO's pending and firing alerts after the move, by key."""

    def __call__(
        self,
        session: Session,
        record: SLORecord,
        slo: SLO,
        assessment: Assessment,
        transitions: Sequence[Transition],
        now: datetime,
        open_alerts: Mapping[str, AlertRecord],
    ) -> object: ...


@dataclass(frozen=True)
class Outcome:
    name: str
    service: str
    slo: SLO | None
    status: Status | None
    error: str | None = None
    error_kind: str | None = None
    transitions: tuple[Transition, ...] = ()
    alerts: Sequence[Mapping[str, str | None]] = field(default=())
    spent: Mapping[str, float | None] = field(default_factory=dict)  # resolved now: what each cost


_BUILT: dict[tuple[str, str, tuple[tuple[str, str | None], ...]], SLO] = {}
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def slo_of(record: SLORecord) -> SLO:
    """Rebuild the domain SLO from its stored documents (secrets substituted now, from the env).

    Built once per definition and values of the variables it uses.
    """
    variables = tuple((n, os.environ.get(n)) for n in sorted(set(_VARIABLE.findall(record.documents))))
    key = (record.name, record.checksum, variables)
    built = _BUILT.get(key)
    if built is None:
        for slo in build_slos(json.loads(record.documents)):
            if slo.name == record.name:
                built = _BUILT[key] = slo
                break
        else:
            raise CatalogueError(())
    return built


def evaluate_all(
    engine: Engine,
    *,
    now: datetime,
    sources: SourcePool,
    concurrency: int,
    names: Sequence[str] | None = None,
    hooks: Sequence[TickHook] = (),
) -> list[Outcome]:
    """Fetch, store and evaluate every SLO (or those named) as of `now`; outcomes sorted by name."""
    with Session(engine) as session:
        records = repo.list_slos(session=session)
    if names is not None:
        records = [r for r in records if r.name in set(names)]
    outcomes: list[Outcome] = []
    work: list[tuple[SLORecord, evaluation.Plan]] = []
    for record in records:
        try:
            slo = slo_of(record)
            work.append((record, evaluation.make_plan(slo, record, now)))
        except CatalogueError as err:
            problems = "; ".join(f"{p.path}: {p.message}" for p in err.problems) or "not buildable"
            outcomes.append(_failed(engine, record, now, CONFIG, problems))
        except Exception as err:  # one SLO's broken definition never stops the others
            log.exception("%s: cannot plan its evaluation", record.name)
            outcomes.append(_failed(engine, record, now, CONFIG, _describe(err)))
    for record, plan, result in _fetch_all(work, sources, concurrency):
        try:
            outcome = _store(engine, record, plan, result, hooks)
        except Exception as err:  # the database or a hook: this SLO's tick is lost, not the others'
            log.exception("%s: evaluation failed while storing or alerting", record.name)
            outcome = _failed(engine, record, now, INTERNAL, _describe(err), plan.slo)
        if outcome is not None:
            outcomes.append(outcome)
    with Session(engine) as session:
        repo.prune_snapshots(session=session, now=now)
        session.commit()
    return sorted(outcomes, key=lambda o: o.name)


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
    stored, a rolled-up bucket cut by a window's start or by `at`) is asked of the source at the
    fine resolution. Nothing is written: no alert moves, nothing is posted, and the SLO's newest
    status stays the live one. `alerts` lists the alerts firing at `at` by the data alone.
    """
    with Session(engine) as session:
        records = repo.list_slos(session=session)
    if names is not None:
        records = [r for r in records if r.name in set(names)]
    outcomes: list[Outcome] = []
    for record in records:
        try:
            slo = slo_of(record)
            plan = evaluation.make_plan(
                slo, record.model_copy(update={"covered_from": None, "covered_to": None}), at
            )
        except CatalogueError as err:
            problems = "; ".join(f"{p.path}: {p.message}" for p in err.problems) or "not buildable"
            outcomes.append(Outcome(record.name, record.service, None, None, problems, CONFIG))
            continue
        except Exception as err:
            log.exception("%s: cannot plan its evaluation", record.name)
            outcomes.append(Outcome(record.name, record.service, None, None, _describe(err), CONFIG))
            continue
        try:
            buckets, warnings = _buckets_as_of(engine, record, plan, sources)
        except SourceError as err:
            kind = BAD_QUERY if isinstance(err, BadQuery) else UNAVAILABLE
            outcomes.append(Outcome(record.name, record.service, slo, None, str(err), kind))
            continue
        except Exception as err:
            log.exception("%s: cannot evaluate as of %s", record.name, at)
            outcomes.append(Outcome(record.name, record.service, slo, None, _describe(err), INTERNAL))
            continue
        assessment = _assess_in_memory(plan, buckets, plan.end, plan.now, warnings)
        alerts = _alerts_as_of(plan, buckets, assessment)
        outcomes.append(Outcome(record.name, record.service, slo, assessment.status, alerts=alerts))
    return sorted(outcomes, key=lambda o: o.name)


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
        fetched, clamped = evaluation.fetch_buckets(plan.slo, sources.get, rng)
        base += fetched
        if clamped:
            warnings.append(
                f"{clamped} bucket(s) from {rng.start:%Y-%m-%d %H:%M} reported more good than total"
            )
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
    """`base` with each range's buckets replaced by ones fetched at the range's step, where the source
    still holds as much as was stored (else the stored ones stay, counted in proportion)."""
    replacements: list[tuple[FetchRange, list[Bucket]]] = []
    for rng in ranges:
        try:
            fetched, _ = evaluation.fetch_buckets(plan.slo, sources.get, rng)
        except SourceError as err:
            warnings.append(f"{rng.start:%Y-%m-%d %H:%M}: counted in proportion ({err})")
            continue
        stored = sum((b.covered for b in base if rng.start <= b.start < rng.end), timedelta(0))
        if sum((f.covered for f in fetched), timedelta(0)) >= stored * 0.99:
            replacements.append((rng, fetched))
        else:  # the source no longer holds it (retention): the stored buckets, in proportion
            warnings.append(f"{rng.start:%Y-%m-%d %H:%M}: counted in proportion from stored data")
    kept = [b for b in base if not any(r.start < b.end and b.start < r.end for r, _ in replacements)]
    return sorted(kept + [b for _, fetched in replacements for b in fetched], key=lambda b: b.start)


def _assess_in_memory(
    plan: evaluation.Plan,
    buckets: Sequence[Bucket],
    end: datetime,
    now: datetime,
    warnings: tuple[str, ...] = (),
) -> Assessment:
    period_start, period_end = period_bounds(plan.slo.window, end)
    period_span = end - period_start
    counts = window_counts(buckets, end, [*plan.policy.windows, period_span])
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
    plan: evaluation.Plan, buckets: Sequence[Bucket], assessment: Assessment
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
        then = {s.key: s for s in _assess_in_memory(plan, buckets, at, at).signals}
        for key in list(following):
            signal = then.get(key)
            if signal is not None and (signal.active or signal.hold):
                began[key] = at
            else:
                following.discard(key)
    alerts = []
    for key, signal in active.items():
        fired = began[key] + signal.alert_after
        if fired <= plan.end:
            since = fired.isoformat().replace("+00:00", "Z") if key not in following else None
            alerts.append({"severity": key, "state": FIRING, "since": since})
    return sorted(alerts, key=lambda a: (a["since"] or "", a["severity"] or ""))


def _fetch_all(
    work: Sequence[tuple[SLORecord, evaluation.Plan]], sources: SourcePool, concurrency: int
) -> Iterator[tuple[SLORecord, evaluation.Plan, evaluation.Fetched | SourceError]]:
    """Yield fetch results as they complete, keeping at most 2 x `concurrency` in memory."""
    pending: dict[Future[evaluation.Fetched], tuple[SLORecord, evaluation.Plan]] = {}
    queue = iter(work)
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        while True:
            while len(pending) < 2 * max(1, concurrency):
                item = next(queue, None)
                if item is None:
                    break
                record, plan = item
                pending[pool.submit(evaluation.fetch, plan, sources.get)] = item
            if not pending:
                return
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                record, plan = pending.pop(future)
                try:
                    yield record, plan, future.result()
                except SourceError as err:
                    yield record, plan, err
                except Exception as err:  # a bug or a broken client: this SLO's alone
                    log.exception("%s: fetching failed", record.name)
                    yield record, plan, SourceFailed(_describe(err))


class SourceFailed(SourceError):
    """Fetching raised something no source should: counted as an internal failure of the SLO."""


def _describe(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}" if str(err) else type(err).__name__


def _failed(
    engine: Engine, record: SLORecord, now: datetime, kind: str, why: str, slo: SLO | None = None
) -> Outcome:
    """Count, log and keep one SLO's failed evaluation; `/slo status` shows it until a success."""
    log.warning("%s is not evaluated: %s", record.name, why)
    METRICS.inc("slo_bot_evaluation_failures_total", kind=kind)
    METRICS.inc("slo_bot_evaluations_total", outcome=kind)
    try:
        with Session(engine) as session:
            assert record.id is not None
            repo.record_failure(session=session, slo_id=record.id, at=now, kind=kind, why=why)
            session.commit()
    except Exception:  # the database itself may be what failed; the outcome still says why
        log.exception("%s: cannot record its failed evaluation", record.name)
    return Outcome(record.name, record.service, slo, None, why, kind)


def _store(
    engine: Engine,
    record: SLORecord,
    plan: evaluation.Plan,
    result: evaluation.Fetched | SourceError,
    hooks: Sequence[TickHook] = (),
) -> Outcome | None:
    with Session(engine, autoflush=False) as session:
        fresh = session.get(SLORecord, record.id)
        if fresh is None or fresh.id is None:  # removed (apply --prune) while its data was fetched
            log.info("%s was removed during the evaluation; skipped", record.name)
            return None
        error: str | None = None
        kind: str | None = None
        warnings: tuple[str, ...] = ()
        if isinstance(result, SourceError):
            error = str(result)
            kind = (
                INTERNAL
                if isinstance(result, SourceFailed)
                else BAD_QUERY
                if isinstance(result, BadQuery)
                else UNAVAILABLE
            )
            log.warning("%s: %s", record.name, error)
            METRICS.inc("slo_bot_source_errors_total", kind=kind)
            METRICS.inc("slo_bot_evaluation_failures_total", kind=kind)
            repo.record_failure(session=session, slo_id=fresh.id, at=plan.now, kind=kind, why=error)
        else:
            evaluation.store(session, fresh, plan, result)
            repo.clear_failure(session=session, record=fresh)
            warnings = result.warnings
        assessment = evaluation.assess(session, fresh, plan, warnings)
        transitions, open_alerts = advance_alerts(session, fresh, assessment.signals, plan.now)
        spent: dict[str, float | None] = {}
        for transition in transitions:
            if transition.event != FIRING:
                ended = alert_store.latest(session=session, slo_id=fresh.id, key=transition.key)
                if ended is not None and ended.fired_at is not None:
                    spent[ended.key] = episodes.record_cost(session, plan.slo, ended, plan.now).cost_ratio
        by_key = {a.key: a for a in open_alerts}
        for hook in hooks:
            hook(session, fresh, plan.slo, assessment, transitions, plan.now, by_key)
        repo.add_snapshot(session=session, slo_id=fresh.id, status=assessment.status, error=error)
        METRICS.inc("slo_bot_evaluations_total", outcome=kind or "ok")
        summaries = alert_store.summaries([a for a in open_alerts if a.state == FIRING])
        session.commit()
    return Outcome(
        record.name, record.service, plan.slo, assessment.status, error, kind, transitions, summaries, spent
    )


def advance_alerts(
    session: Session, record: SLORecord, signals: Sequence[Signal], at: datetime
) -> tuple[tuple[Transition, ...], list[AlertRecord]]:
    """Move each of the SLO's alerts by its signal; persist states and the event trail.

    Returns the transitions and the alerts open afterwards."""
    assert record.id is not None
    current = alert_store.open_alerts(session=session, slo_id=record.id)
    transitions = []
    still_open = []
    for signal in signals:
        existing = current.pop(signal.key, None)
        after, transition = alerting.step(record.name, alert_store.as_open(existing), signal, at)
        stepped = alert_store.record_step(
            session=session,
            slo_id=record.id,
            current=existing,
            after=after,
            transition=transition,
            at=at,
        )
        if transition is not None:
            transitions.append(transition)
        if after is not None and stepped is not None:
            still_open.append(stepped)
    # alerts whose key the policy no longer has (the policy changed) stay as they are
    return tuple(transitions), still_open + list(current.values())
