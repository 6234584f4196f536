"""Evaluate many SLOs: sources are queried in parallel (bounded), results stored one SLO at a time.

A failure belongs to its SLO: one broken query or unreachable source never stops the others.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Container, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from queue import SimpleQueue
from typing import Protocol

from sqlalchemy import Engine
from sqlmodel import Session

from bot import alerting, breaches, episodes, evaluation, groups, logs
from bot.adjustments import NONE as NO_EXCLUSIONS
from bot.adjustments import Exclusions
from bot.alerting import FIRING, Transition
from bot.budget import Status, WindowCounts
from bot.catalogue import CatalogueError
from bot.catalogue.stored import slo_of
from bot.domain import SLO
from bot.fleet import Lease
from bot.metrics import METRICS
from bot.policy import Signal
from bot.sources.base import BadQuery, SourceError
from bot.sources.pool import SourcePool
from bot.status import Assessment
from bot.store import adjustments as adjustment_store
from bot.store import alerts as alert_store
from bot.store import breaches as breach_store
from bot.store import groups as group_store
from bot.store import history, leases, readings, repo
from bot.store.models import AlertRecord, BreachRecord, SLORecord

log = logging.getLogger(__name__)

UNAVAILABLE = "source_unavailable"  # retry next tick
BAD_QUERY = "bad_query"  # a human must fix the query or the DataSource
CONFIG = "config"  # the stored definition no longer builds (e.g. an unset variable)
INTERNAL = "internal"  # storing or alerting failed (the database, a hook): see the log
PRUNE_EVERY = timedelta(minutes=10)  # old snapshots go this often, by one replica of the fleet
MEMBERS_TOGETHER = 100  # a grouped SLO's members are stored up to this many to a transaction
# A tick stores what it fetched in batches of up to this many x the fetch concurrency (a steady
# tick's results are a bucket or two each: a transaction's statements cost about the same for 16
# SLOs as for 128; at 1,000 SLOs, 128 a batch took the tick's thread 0.09-0.15 s less CPU than 64,
# and 256 no less time), and of up to this many buckets (a first cycle's ~1,800 buckets an SLO)
BATCH_PER_FETCH = 8
HELD_BUCKETS = 32_000


@dataclass(frozen=True)
class Tick:
    """What one evaluation of one SLO did, for the places breaches are shown (Slack, the incident
    tools, the terminal): each breach change with its breach, and the breaches open afterwards."""

    record: SLORecord
    slo: SLO
    assessment: Assessment
    now: datetime
    changes: tuple[tuple[breaches.Change, BreachRecord], ...] = ()
    open: tuple[BreachRecord, ...] = ()
    signals: Mapping[str, AlertRecord] = field(default_factory=dict)  # open afterwards, by key
    exclusions: Exclusions = NO_EXCLUSIONS  # the tick's maintenance windows and refunds, read once


class TickHook(Protocol):
    """Runs inside an SLO's evaluation transaction, after its breaches moved (e.g. queue Slack messages)."""

    def __call__(self, session: Session, tick: Tick) -> object: ...


@dataclass(frozen=True)
class Outcome:
    name: str
    service: str
    slo: SLO | None
    status: Status | None
    error: str | None = None
    error_kind: str | None = None
    transitions: tuple[Transition, ...] = ()  # of the signals
    alerts: Sequence[Mapping[str, str | None]] = field(default=())  # the open breaches, as SPEC's JSON
    changes: tuple[breaches.Change, ...] = ()
    spent: Mapping[int, float | None] = field(default_factory=dict)  # breaches resolved now: their cost
    parts: tuple[tuple[str, Status], ...] = ()  # a composite SLO's: each part's own status, by name


def evaluate_all(
    engine: Engine,
    *,
    now: datetime,
    sources: SourcePool,
    concurrency: int,
    names: Sequence[str] | None = None,
    hooks: Sequence[TickHook] = (),
    lease: Lease | None = None,
) -> list[Outcome]:
    """Fetch, store and evaluate every SLO (or those named) as of `now`; outcomes sorted by name.

    A grouped SLO is planned, fetched and stored with its members (`_store_group`): one query per
    range for all of them, then one transaction per member.

    With a `lease` (`slo-bot run`), only the SLOs this replica takes for the lease's tick: replicas
    on one database share the SLOs of a tick between them, each evaluated by exactly one (a grouped
    SLO's lease is its definition's: its members go with it)."""
    assert lease is None or names is None, "a replica's tick evaluates whatever it leases"
    if lease is not None:
        with Session(engine) as session:
            leases.add_missing(session=session)
            session.commit()
    with Session(engine) as session:
        records = repo.list_slos(session=session)
        # breaches open and close only in their SLO's own evaluation: one read for all, so the many
        # SLOs without one cost no query for it
        breached = breach_store.slos_with_open_breaches(session=session)
        # (names only: a replica of a fleet stores a few of the groups, and reads their members then)
        members = group_store.member_names(
            session=session, group_ids=[r.id for r in records if r.group_by and r.id]
        )
        exclusions = adjustment_store.load_exclusions(session=session)
    if names is None:  # an SLO removed since (`apply --prune`) has no series any more
        METRICS.slos.keep_only(
            [r.name for r in records if not r.group_by]
            + [name for found in members.values() for name in found]
        )
    else:
        wanted = set(names)
        records = [
            r
            for r in records
            if r.name in wanted or any(name in wanted for name in members.get(r.id or 0, ()))
        ]
    outcomes: list[Outcome] = []
    chosen: Iterable[SLORecord | None] = records
    renewal = _Renewal(engine, lease) if lease is not None else None
    if lease is not None and renewal is not None:
        # a replica holds no more than it is about to fetch and store, so the others share: with
        # grouped SLOs (each a big fetch) a few at a time, else as many as it fetches at once, and
        # more as the tick goes on, up to a stored batch's worth (each claim is a transaction: a
        # few SLOs a claim cost a tick as much as its bookkeeping)
        grouped = any(r.group_by for r in records)
        first = max(1, concurrency // 4 if grouped else concurrency)
        most = first if grouped else BATCH_PER_FETCH * first
        chosen = _leased(engine, records, lease, renewal, batch=first, most=most)

    def weight(record: SLORecord) -> int:
        """A grouped SLO weighs its members, up to half the in-flight budget (members not known yet:
        half), so a replica has two big groups in flight, one fetched while the other is stored,
        not 2 x concurrency of them with every member's buckets (memory), nor takes them all."""
        if not record.group_by:
            return 1
        half = max(1, concurrency)
        return min(half, len(members.get(record.id or 0, ()))) or half

    work = _planned(engine, chosen, now, outcomes, lease, exclusions)
    for fetched in _fetch_all(work, sources, concurrency, weight=weight):
        if renewal is not None:  # storing what is fetched can outlast a lease: keep them
            renewal.renew_if_due()
        # what completed together is stored together
        singles: list[Item] = []
        for record, plan, result in fetched:
            if not record.group_by:
                assert not isinstance(result, evaluation.GroupFetched)
                singles.append((record, plan, result))
                continue
            found = _store_group(engine, record, plan, result, hooks, breached, lease)
            if names is not None and record.name not in names:
                found = [o for o in found if o.name in names]
            outcomes += found
        if singles:
            outcomes += _store_batch(engine, singles, hooks, breached, lease)
    if lease is not None:  # a replica of a fleet shows the SLOs it takes, not all it ever took
        METRICS.slos.ticked(o.name for o in outcomes)
    with Session(engine) as session:
        if lease is None or leases.claim_job(
            session=session, name="prune-snapshots", holder=lease.holder, now=now, every=PRUNE_EVERY
        ):
            repo.prune_snapshots(session=session, now=now)
            readings.prune(session=session, now=now)
        session.commit()
    return sorted(outcomes, key=lambda o: o.name)


IDLE = None  # in the work queue: nothing to take right now, but other replicas may hand some back


def _planned(
    engine: Engine,
    records: Iterable[SLORecord | None],
    now: datetime,
    outcomes: list[Outcome],
    lease: Lease | None,
    exclusions: Exclusions,
) -> Iterator[tuple[SLORecord, evaluation.Plan] | None]:
    """Each SLO with its evaluation plan; one whose definition no longer builds goes to `outcomes`."""
    for record in records:
        if record is IDLE:
            yield IDLE
            continue
        try:
            slo = slo_of(record)
            plan = evaluation.make_plan(slo, record, now, exclusions)
        except CatalogueError as err:
            problems = "; ".join(f"{p.path}: {p.message}" for p in err.problems) or "not buildable"
            outcomes.append(_failed(engine, record, now, CONFIG, problems, lease=lease))
            continue
        except Exception as err:  # one SLO's broken definition never stops the others
            log.exception("%s: cannot plan its evaluation", record.name, extra={"slo": record.name})
            outcomes.append(_failed(engine, record, now, CONFIG, describe_error(err), lease=lease))
            continue
        yield record, plan


class _Renewal:
    """Renews this replica's leases of the tick every third of their time to live, whichever of the
    taking and the storing asks (both run in the tick's thread)."""

    def __init__(self, engine: Engine, lease: Lease) -> None:
        self.engine = engine
        self.lease = lease
        self.renewed = time.monotonic()

    def renew_if_due(self) -> None:
        if time.monotonic() - self.renewed <= self.lease.ttl.total_seconds() / 3:
            return
        lease = self.lease
        with Session(self.engine) as session:
            until = lease.clock() + lease.ttl
            leases.renew(session=session, holder=lease.holder, tick=lease.tick, until=until)
            session.commit()
        self.renewed = time.monotonic()


def _leased(
    engine: Engine, records: Sequence[SLORecord], lease: Lease, renewal: _Renewal, batch: int, most: int
) -> Iterator[SLORecord | None]:
    """The SLOs this replica takes for the lease's tick as the fetches need them, `batch` at first
    and twice as many each claim up to `most` (replicas that begin a tick together each take a
    share; a long tick costs few claims), until none is left (the other replicas took the rest) or
    the replica is stopping. IDLE while other replicas still hold SLOs of the tick: what they hand
    back (SIGTERM) is taken too."""
    by_id = {r.id: r for r in records}
    taken = 0
    after = 0  # the claims go up the ids, then look again from the start (handed back, expired)
    METRICS.leases_held(0)
    while not lease.stopping.is_set():
        with Session(engine) as session:
            ids = leases.claim(
                session=session,
                holder=lease.holder,
                tick=lease.tick,
                now=lease.clock(),
                ttl=lease.ttl,
                limit=batch,
                after=after,
            )
            session.commit()
        if not ids and after:
            after = 0
            continue
        after = max(ids, default=0)
        if not ids:
            with Session(engine) as session:
                waiting = leases.others_unfinished(session=session, holder=lease.holder, tick=lease.tick)
            if not waiting or lease.wait_left <= 0:
                return
            yield IDLE
            continue
        taken += len(ids)
        batch = min(2 * batch, most)
        METRICS.leases_held(taken)
        for index, slo_id in enumerate(ids):
            if lease.stopping.is_set():  # SIGTERM: another replica may still take these in this tick
                with Session(engine) as session:
                    leases.hand_back(
                        session=session, slo_ids=ids[index:], holder=lease.holder, tick=lease.tick
                    )
                    session.commit()
                log.info("stopping: handed back %d SLO(s) of the tick", len(ids) - index)
                return
            renewal.renew_if_due()  # slow fetches keep their leases
            record = by_id.get(slo_id)
            if record is None:  # applied after the tick began
                with Session(engine) as session:
                    record = session.get(SLORecord, slo_id)
            if record is not None:
                yield record


Fetched = evaluation.Fetched | evaluation.GroupFetched


def _fetch_all(
    work: Iterable[tuple[SLORecord, evaluation.Plan] | None],
    sources: SourcePool,
    concurrency: int,
    poll: float = 0.25,
    weight: Callable[[SLORecord], int] = lambda _: 1,
) -> Iterator[list[tuple[SLORecord, evaluation.Plan, Fetched | SourceError]]]:
    """Yield fetch results in batches (each batch is stored in one transaction: the fewer batches,
    the fewer statements a tick costs) of up to BATCH_PER_FETCH x `concurrency` of weight or
    HELD_BUCKETS buckets (a first cycle's results are big, a steady tick's a bucket or two each),
    keeping at most 2 x `concurrency` of weight in flight (a grouped SLO weighs its members; one
    item is always let in). An IDLE item means nothing to fetch now: finish what is pending, or
    wait `poll` seconds and ask again."""
    pending: dict[Future[Fetched], tuple[SLORecord, evaluation.Plan]] = {}
    weights: dict[Future[Fetched], int] = {}
    # completed futures, in the order they complete (one queue, not a wait() over every pending
    # future each time one completes: that costs the tick's thread O(in flight) a completion)
    completed: SimpleQueue[Future[Fetched]] = SimpleQueue()
    held: list[tuple[SLORecord, evaluation.Plan, Fetched | SourceError]] = []
    held_weight = held_buckets = in_flight = 0
    queue = iter(work)
    finished = object()
    budget = 2 * max(1, concurrency)
    batch = BATCH_PER_FETCH * max(1, concurrency)
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        while True:
            while not pending or in_flight < budget:
                item = next(queue, finished)
                if item is finished:
                    queue = iter(())
                    break
                if item is IDLE:
                    if pending or held:
                        break
                    time.sleep(poll)
                    continue
                assert isinstance(item, tuple)
                record, plan = item
                fetcher: Callable[[evaluation.Plan, evaluation.SourceFor], Fetched] = (
                    evaluation.fetch_group if record.group_by else evaluation.fetch
                )
                fetch = logs.carry(fetcher, slo=record.name)  # its lines name the SLO and tick
                future = pool.submit(fetch, plan, sources.get)
                pending[future] = item
                weights[future] = weight(record)
                in_flight += weights[future]
                future.add_done_callback(completed.put)
            if not pending:
                if not held:
                    return
                yield held  # all there is for now (the work is done, or waits for a lease)
                held, held_weight, held_buckets = [], 0, 0
                continue
            done = [completed.get()]
            while not completed.empty():
                done.append(completed.get())
            for future in sorted(done, key=lambda f: pending[f][0].name):
                record, plan = pending.pop(future)
                held_weight += weights[future]
                in_flight -= weights.pop(future)
                try:
                    result = future.result()
                except SourceError as err:
                    held.append((record, plan, err))
                except Exception as err:  # a bug or a broken client: this SLO's alone
                    log.exception("%s: fetching failed", record.name, extra={"slo": record.name})
                    held.append((record, plan, SourceFailed(describe_error(err))))
                else:
                    held.append((record, plan, result))
                    held_buckets += _bucket_count(result)
                if held_weight >= batch or held_buckets >= HELD_BUCKETS:  # (many complete at once)
                    yield held
                    held, held_weight, held_buckets = [], 0, 0


def _bucket_count(result: Fetched) -> int:
    """How many buckets a fetch result holds (of every member, a grouped SLO's)."""
    if isinstance(result, evaluation.GroupFetched):
        return sum(len(found or ()) for member in result.members.values() for found in member)
    return sum(len(found) for found in result.buckets) + sum(_bucket_count(part) for part in result.parts)


class SourceFailed(SourceError):
    """Fetching raised something no source should: counted as an internal failure of the SLO."""


def describe_error(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}" if str(err) else type(err).__name__


def _failed(
    engine: Engine,
    record: SLORecord,
    now: datetime,
    kind: str,
    why: str,
    slo: SLO | None = None,
    lease: Lease | None = None,
) -> Outcome:
    """Count, log and keep one SLO's failed evaluation; `/slo status` shows it until a success."""
    with logs.context(slo=record.name):
        log.warning("%s is not evaluated: %s", record.name, why)
        METRICS.evaluation_failed(kind)
        METRICS.evaluated(kind)
        try:
            with Session(engine) as session:
                assert record.id is not None
                # a failure is this tick's evaluation too (tried again next tick), unless the lease
                # was lost meanwhile: then the replica that took it over has the say
                if lease is not None and not _complete(session, record.id, lease, now):
                    return Outcome(record.name, record.service, slo, None, why, kind)
                repo.record_failure(session=session, slo_id=record.id, at=now, kind=kind, why=why)
                session.commit()
        except Exception:  # the database itself may be what failed; the outcome still says why
            log.exception("%s: cannot record its failed evaluation", record.name)
    return Outcome(record.name, record.service, slo, None, why, kind)


Item = tuple[SLORecord, evaluation.Plan, "evaluation.Fetched | SourceError"]


def _store_batch(
    engine: Engine,
    items: Sequence[Item],
    hooks: Sequence[TickHook],
    breached: Container[int],  # the SLOs with an open breach when the tick began
    lease: Lease | None = None,
) -> list[Outcome]:
    """Store and evaluate fetched SLOs together, in one transaction (a tick's bookkeeping costs a
    few statements for many SLOs, not several for each). Should that fail (the database, a
    hook), each SLO is stored again alone, so one SLO's failure is its own."""
    if len(items) > 1:
        try:
            return _store_together(engine, items, hooks, breached, lease)
        except Exception:
            log.warning("storing %d SLOs together failed; storing each alone", len(items), exc_info=True)
    outcomes = []
    for record, plan, result in items:
        try:
            outcomes += _store_together(engine, [(record, plan, result)], hooks, breached, lease)
        except Exception as err:  # the database or a hook: this SLO's tick is lost, not the others'
            log.exception(
                "%s: evaluation failed while storing or alerting", record.name, extra={"slo": record.name}
            )
            outcomes.append(_failed(engine, record, plan.now, INTERNAL, describe_error(err), plan.slo, lease))
    return outcomes


def _store_together(
    engine: Engine,
    items: Sequence[Item],
    hooks: Sequence[TickHook],
    breached: Container[int],
    lease: Lease | None,
) -> list[Outcome]:
    # (nothing is read from the batch's rows after its commit, and expiring them all cost the
    # commit 2-3 % of a steady tick's thread)
    with Session(engine, autoflush=False, expire_on_commit=False) as session:
        repo.commit_without_flush_wait(session=session)
        ids = [record.id for record, _, _ in items if record.id is not None]
        kept = set(ids)
        if lease is not None:
            kept = leases.complete_many(
                session=session, slo_ids=ids, holder=lease.holder, tick=lease.tick, now=items[0][1].now
            )
        lost = [record.name for record, _, _ in items if record.id not in kept]
        for name in lost:
            log.warning(
                "%s: its lease expired before its evaluation was stored; the replica that took it "
                "over evaluates it (slow source or database?)",
                name,
                extra={"slo": name},
            )
        # one evaluation of an SLO at a time, whoever runs it (a replica, `slo-bot check`): the row
        # locks hold a second one back until this transaction ends (PostgreSQL; SQLite has one
        # writer at a time anyway)
        locked = alert_store.lock_slos(session=session, slo_ids=sorted(kept))
        removed = [r.name for r, _, _ in items if r.id in kept and r.id not in locked]
        for name in removed:  # (apply --prune) while its data was fetched
            log.info("%s was removed during the evaluation; skipped", name)
        live = [(*locked[r.id], plan, result) for r, plan, result in items if r.id in locked]
        # (before this evaluation moves it: the first evaluation of a day keeps the budget's reading)
        previous_end = {fresh.id: repo.utc(fresh.covered_to) for fresh, _, _, _ in live}
        evaluation.store_many(
            session, [(fresh, plan, got) for fresh, _, plan, got in live if not isinstance(got, SourceError)]
        )
        # (a member's newest data: how a quiet one retires)
        seen = {
            fresh.id: at
            for fresh, _, plan, got in live
            if plan.slo.member_of and fresh.id is not None and not isinstance(got, SourceError)
            if (at := group_store.newest_data(got.buckets)) is not None
        }
        group_store.set_last_data(session=session, seen=seen)
        asks = [(fresh.id, plan.end, evaluation.windows_of(plan)) for fresh, _, plan, _ in live if fresh.id]
        sums = history.window_sums_many(session=session, asks=asks)
        # the few SLOs with open signals or breaches: theirs read for all at once
        with_signals = [f.id for f, has_signals, _, _ in live if has_signals and f.id is not None]
        signals = alert_store.open_alerts_many(session=session, slo_ids=with_signals)
        # (a firing signal may belong to a breach another process opened since the tick began)
        firing = {i for i, found in signals.items() if any(a.state == FIRING for a in found.values())}
        breaching = [f.id for f, _, _, _ in live if f.id is not None and (f.id in breached or f.id in firing)]
        opened = breach_store.open_breaches_many(session=session, slo_ids=breaching)
        done: list[tuple[Outcome, str | None, list[tuple[str, str]]]] = []
        snapshots = []
        for fresh, _, plan, result in live:
            assert fresh.id is not None
            with logs.context(slo=fresh.name):
                outcome, open_kinds = _evaluate(
                    session,
                    fresh,
                    plan,
                    result,
                    sums[fresh.id],
                    signals.get(fresh.id, {}),
                    opened.get(fresh.id, []),
                    hooks,
                )
            assert outcome.status is not None
            snapshots.append((fresh.id, outcome.status, outcome.error))
            new_day = readings.is_new_day(previous_end[fresh.id], plan.now)
            if new_day and outcome.status.remaining_ratio is not None:
                readings.record(session=session, slo_id=fresh.id, status=outcome.status)
            done.append((outcome, outcome.error_kind, open_kinds))
        repo.add_snapshots(session=session, rows=snapshots)
        session.commit()
    for _ in lost:
        METRICS.lease_lost()
    for name in removed:
        METRICS.slos.forget(name)
    for outcome, kind, open_kinds in done:
        if kind is not None:
            METRICS.source_failed(kind)
            METRICS.evaluation_failed(kind)
        METRICS.evaluated(kind or "ok")
        assert outcome.status is not None
        METRICS.slos.evaluated(outcome.name, outcome.service, outcome.status, open_kinds, outcome.parts)
    return [outcome for outcome, _, _ in done]


def _evaluate(
    session: Session,
    fresh: SLORecord,
    plan: evaluation.Plan,
    result: evaluation.Fetched | SourceError,
    counts: Mapping[timedelta, WindowCounts],
    signals: Mapping[str, AlertRecord],
    opened: Sequence[BreachRecord],
    hooks: Sequence[TickHook],
) -> tuple[Outcome, list[tuple[str, str]]]:
    """One SLO's part of a stored batch: its assessment, alerts, breaches and hooks; the outcome
    and its open breaches as (kind, severity)."""
    assert fresh.id is not None
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
        log.warning("%s: %s", fresh.name, error)
        repo.record_failure(session=session, slo_id=fresh.id, at=plan.now, kind=kind, why=error)
    else:
        repo.clear_failure(session=session, record=fresh)
        warnings = result.warnings
    assessment = evaluation.assess(session, fresh, plan, warnings, counts)
    before = breach_store.current(opened)
    open_before = {kind: breach_store.as_open(b, signals) for kind, b in before.items()}
    transitions, open_alerts = advance_alerts(session, fresh, assessment.signals, plan.now, signals)
    firing = {a.key for a in open_alerts if a.state == FIRING}
    after, changes = breaches.advance(fresh.name, open_before, transitions, firing, plan.now)
    by_key = {a.key: a for a in open_alerts}
    burns = {s.key: s.burn_rates for s in assessment.signals}
    done = breach_store.apply_changes(session, fresh.id, before, after, changes, by_key, plan.now, burns)
    spent: dict[int, float | None] = {}
    for change, breach in done:
        if change.event == breaches.RESOLVED and breach.id is not None:
            spent[breach.id] = episodes.record_cost(session, plan.slo, breach, plan.now).cost_ratio
    # what was read and what changed: no need to read them again
    now_open = tuple(breach_store.still_open(opened, (b for _, b in done)))
    tick = Tick(fresh, plan.slo, assessment, plan.now, tuple(done), now_open, by_key, plan.exclusions)
    for hook in hooks:
        hook(session, tick)
    outcome = Outcome(
        fresh.name,
        fresh.service,
        plan.slo,
        assessment.status,
        error,
        kind,
        transitions,
        breach_store.summaries(now_open),
        tuple(c for c, _ in done),
        spent,
        assessment.parts,
    )
    return outcome, [(b.kind, b.severity) for b in now_open]


def _store_group(
    engine: Engine,
    record: SLORecord,
    plan: evaluation.Plan,
    result: Fetched | SourceError,
    hooks: Sequence[TickHook],
    breached: set[int],
    lease: Lease | None = None,
) -> list[Outcome]:
    """Store a grouped SLO's tick: new label values become members (committed first), each member is
    stored and evaluated in a transaction of its own, and the definition's coverage moves on last,
    only when every member was stored (else the next tick asks the same ranges again). Members
    quiet for their window (`bot.groups.quiet_period`) and with no open breach retire. The
    definition's lease covers its members: it is marked done in the first transaction."""
    assert record.id is not None and not isinstance(result, evaluation.Fetched)
    name = record.name
    try:
        with Session(engine, autoflush=False) as session:
            if lease is not None and not _complete(session, record.id, lease, plan.now):
                log.warning("%s: its lease expired before its evaluation was stored", name)
                METRICS.lease_lost()
                return []
            # the members as stored now, not as the tick began: a replica still storing the tick
            # before may have added some since (each add would fail on the member's unique name)
            stored = group_store.members(session=session, group_ids=[record.id], documents=False)
            members = {group_store.key_of(m): m for m in stored[record.id]}
            if isinstance(result, evaluation.GroupFetched):
                for key in result.members:
                    if key not in members:
                        member_name = groups.member_name(name, key)
                        log.info("%s: new member %s", name, member_name)
                        members[key] = group_store.add_member(
                            session=session, definition=record, name=member_name, key=key, now=plan.now
                        )
            session.commit()
            found = group_store.members(session=session, group_ids=[record.id], documents=False)[record.id]
            members = {group_store.key_of(m): m for m in found}
            session.expunge_all()
    except Exception as err:
        log.exception("%s: cannot add the group's new members", name)
        return [_failed(engine, record, plan.now, INTERNAL, describe_error(err), plan.slo)]
    if isinstance(result, SourceError) and not members:  # nothing to show it on but the group
        kind = BAD_QUERY if isinstance(result, BadQuery) else UNAVAILABLE
        return [_failed(engine, record, plan.now, kind, str(result), plan.slo)]
    items: list[Item] = []
    for key, member in sorted(members.items(), key=lambda item: item[1].name):
        member_plan = replace(plan, slo=groups.member_slo(plan.slo, key))
        share = result.of(key) if isinstance(result, evaluation.GroupFetched) else result
        items.append((member, member_plan, share))
    outcomes: list[Outcome] = []
    for together in _chunks(items, MEMBERS_TOGETHER, HELD_BUCKETS):
        outcomes += _store_batch(engine, together, hooks, breached)
    # a member that failed to store (not to fetch) has its buckets asked again next tick
    stored_all = not any(o.error_kind == INTERNAL for o in outcomes)
    try:
        with Session(engine, autoflush=False) as session:
            fresh = session.get(SLORecord, record.id)
            if fresh is None:
                return outcomes
            if isinstance(result, SourceError):
                kind = BAD_QUERY if isinstance(result, BadQuery) else UNAVAILABLE
                repo.record_failure(
                    session=session, slo_id=record.id, at=plan.now, kind=kind, why=str(result)
                )
            elif stored_all:
                # the definition holds no bucket: its coverage is what its queries have asked
                empty = evaluation.Fetched(
                    result.ranges, tuple(() for _ in result.ranges), (), result.incomplete
                )
                evaluation.store(session, fresh, plan, empty)
                repo.clear_failure(session=session, record=fresh)
            open_now = breach_store.slos_with_open_breaches(session=session)
            last = group_store.last_data(session=session, group_id=record.id)
            quiet = [
                m
                for m in members.values()
                if m.id is not None
                and m.id not in open_now
                and groups.retires(plan.slo, last.get(m.id), repo.utc(m.created_at) or plan.now, plan.now)
            ]
            if quiet:
                log.info(
                    "%s: retiring %s (no data for %s)",
                    name,
                    ", ".join(m.name for m in quiet),
                    groups.quiet_period(plan.slo),
                )
                group_store.retire(session=session, slo_ids=[m.id for m in quiet if m.id is not None])
                for m in quiet:
                    METRICS.slos.forget(m.name)
            session.commit()
        gone = {m.name for m in quiet}
        return [o for o in outcomes if o.name not in gone]
    except Exception:
        log.exception("%s: cannot record the group's coverage", name)
        return outcomes


def _chunks(items: Sequence[Item], most: int, buckets: int) -> Iterator[Sequence[Item]]:
    """`items` in runs of at most `most` and of about `buckets` buckets (at least one item each): a
    group's steady tick stores its members `most` to a transaction, its first cycle (a window of
    buckets each) a few, so what one transaction builds stays bounded."""
    run: list[Item] = []
    held = 0
    for item in items:
        result = item[2]
        size = 0 if isinstance(result, SourceError) else _bucket_count(result)
        if run and (len(run) >= most or held + size > buckets):
            yield run
            run, held = [], 0
        run.append(item)
        held += size
    if run:
        yield run


def _complete(session: Session, slo_id: int, lease: Lease, now: datetime) -> bool:
    return leases.complete(session=session, slo_id=slo_id, holder=lease.holder, tick=lease.tick, now=now)


def advance_alerts(
    session: Session,
    record: SLORecord,
    signals: Sequence[Signal],
    at: datetime,
    current: Mapping[str, AlertRecord],
) -> tuple[tuple[Transition, ...], list[AlertRecord]]:
    """Move each of the SLO's alerts (`current`: the open ones by key) by its signal; persist states
    and the event trail. Returns the transitions and the alerts open afterwards."""
    assert record.id is not None
    if not current and not any(s.active for s in signals):  # most SLOs, most ticks: nothing moves
        return (), []
    current = dict(current)
    transitions = []
    still_open = []
    moved: list[tuple[AlertRecord, Transition]] = []
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
            if stepped is not None:
                moved.append((stepped, transition))
        if after is not None and stepped is not None:
            still_open.append(stepped)
    if moved:  # one flush gives the new alerts their ids, for the events of every transition
        session.flush()
        for alert, transition in moved:
            assert alert.id is not None
            alert_store.add_event(
                session=session,
                alert_id=alert.id,
                at=at,
                event=transition.event,
                burn_rates=transition.burn_rates,
                detail=transition.reason,
            )
    # alerts whose key the policy no longer has (the policy changed) stay as they are
    return tuple(transitions), still_open + list(current.values())
