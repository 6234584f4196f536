"""A tick over many SLOs: a failure while storing or alerting one, or its removal mid-tick, is that
SLO's alone (in process, on SQLite and PostgreSQL, with the simulated source)."""

from __future__ import annotations

import contextlib
import io
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from bot import cli, jobs
from bot.domain import DataSource, MetricQuery
from bot.metrics import METRICS
from bot.sources.base import Source
from bot.sources.pool import SourcePool
from bot.store import readings, repo
from bot.store.models import BudgetReadingRecord
from tests.promtext import sample, samples

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
SLO = """
---
apiVersion: openslo/v1
kind: SLO
metadata: {{name: {name}}}
spec:
  service: api
  indicator:
    metadata: {{name: {name}-requests}}
    spec:
      ratioMetric:
        counter: true
        good: {{metricSource: {{metricSourceRef: sim, spec: {{query: good}}}}}}
        total: {{metricSource: {{metricSourceRef: sim, spec: {{query: total}}}}}}
  timeWindow: [{{duration: 30d, isRolling: true}}]
  budgetingMethod: Occurrences
  objectives: [{{target: 0.999}}]
"""
CATALOGUE = """
apiVersion: openslo/v1
kind: DataSource
metadata: {name: sim}
spec:
  type: Simulated
  connectionDetails: {seed: 3, requests_per_minute: 100, error_ratio: 0.0001}
""" + "".join(SLO.format(name=n) for n in ("alpha", "beta", "gamma"))
NAMES = {"alpha", "beta", "gamma"}


def _apply(tmp_path: Path, database_url: str, monkeypatch: Any) -> None:
    path = tmp_path / "slos.yaml"
    path.write_text(CATALOGUE)
    monkeypatch.setenv("DATABASE_URL", database_url)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        assert cli.main(["apply", str(path)]) == 0


def _failures(kind: str) -> float:
    return sample(METRICS.render(), "slo_bot_evaluation_failures_total", kind=kind) or 0


def test_a_hook_that_fails_for_one_slo_loses_only_that_slos_tick(
    tmp_path: Path, database_url: str, engine: Engine, monkeypatch: Any
) -> None:
    _apply(tmp_path, database_url, monkeypatch)

    def hook(session: Session, tick: jobs.Tick) -> None:
        if tick.record.name == "beta":
            raise RuntimeError("the Slack queue is broken")

    before = _failures(jobs.INTERNAL)
    sources = SourcePool(max_connections=2)
    try:
        outcomes = {
            o.name: o
            for o in jobs.evaluate_all(engine, now=NOW, sources=sources, concurrency=2, hooks=[hook])
        }
    finally:
        sources.close()
    assert outcomes["alpha"].status is not None and outcomes["gamma"].status is not None
    assert outcomes["beta"].status is None and outcomes["beta"].error_kind == jobs.INTERNAL
    assert "the Slack queue is broken" in (outcomes["beta"].error or "")
    assert _failures(jobs.INTERNAL) == before + 1  # counted
    with Session(engine) as session:
        failing = {r.name: r for r in repo.list_slos(session=session)}
        assert (
            repo.utc(failing["beta"].failing_since) == NOW and failing["beta"].failure_kind == jobs.INTERNAL
        )
        assert failing["alpha"].failing_since is None
        names = {r.name for r, snap in repo.latest_snapshots(session=session) if snap is not None}
    assert names == {"alpha", "gamma"}  # beta's transaction was rolled back whole


class Pruning:
    """A pool whose source deletes the SLO `gamma` while its data is being fetched (`apply --prune`)."""

    def __init__(self, engine: Engine) -> None:
        self.pool = SourcePool(max_connections=2)
        self.engine = engine

    def get(self, datasource: DataSource) -> Source:
        inner = self.pool.get(datasource)
        engine = self.engine

        class Source:
            def fetch_range(self, metric: MetricQuery, **kwargs: Any) -> dict[datetime, float]:
                with Session(engine) as session:
                    repo.delete_slos_except(session=session, keep=["alpha", "beta"])
                    session.commit()
                return inner.fetch_range(metric, **kwargs)

        return Source()


def test_an_slo_removed_while_its_data_is_fetched_is_skipped(
    tmp_path: Path, database_url: str, engine: Engine, monkeypatch: Any
) -> None:
    _apply(tmp_path, database_url, monkeypatch)
    pool = Pruning(engine)
    try:
        outcomes = jobs.evaluate_all(
            engine, now=NOW + timedelta(minutes=1), sources=pool, concurrency=1, names=["gamma", "alpha"]
        )  # type: ignore[arg-type]
    finally:
        pool.pool.close()
    assert [o.name for o in outcomes] == ["alpha"]  # alpha stored, gamma gone without an error
    assert outcomes[0].status is not None


def test_a_replica_storing_slowly_keeps_its_leases_and_no_slo_is_evaluated_twice(
    tmp_path: Path, database_url: str, engine: Engine, monkeypatch: Any
) -> None:
    # the replica took its SLOs, then spent longer than a lease's life storing them: its leases
    # expired and a second replica evaluated those SLOs again (the first one's work thrown away)
    import threading
    import time

    from bot.fleet import Lease

    _apply(tmp_path, database_url, monkeypatch)
    ttl = timedelta(seconds=0.9)

    def slow(session: Session, tick: jobs.Tick) -> None:
        time.sleep(0.8)  # a busy database: three SLOs take 2.4 s to store

    sources = SourcePool()
    lost_before = sample(METRICS.render(), "slo_bot_leases_lost_total") or 0.0
    try:
        jobs.evaluate_all(engine, now=NOW, sources=sources, concurrency=4)  # backfill, no lease
        first = Lease("slow", NOW + timedelta(minutes=1), ttl)
        found: dict[str, list[jobs.Outcome]] = {}
        thread = threading.Thread(
            target=lambda: found.setdefault(
                "slow",
                jobs.evaluate_all(
                    engine,
                    now=NOW + timedelta(minutes=1),
                    sources=sources,
                    concurrency=4,
                    hooks=[slow],
                    lease=first,
                ),
            )
        )
        thread.start()
        time.sleep(1.2)  # past the first lease's life: a second replica's tick comes along
        second = Lease("quick", NOW + timedelta(minutes=1), ttl)
        found["quick"] = jobs.evaluate_all(
            engine, now=NOW + timedelta(minutes=1), sources=sources, concurrency=4, lease=second
        )
        thread.join()
    finally:
        sources.close()
    assert sorted(o.name for o in found["slow"]) == ["alpha", "beta", "gamma"]
    assert found["quick"] == []
    assert (sample(METRICS.render(), "slo_bot_leases_lost_total") or 0.0) == lost_before


def test_an_slos_first_evaluation_of_each_day_keeps_its_budget_for_the_reports(
    tmp_path: Path, database_url: str, engine: Engine, monkeypatch: Any
) -> None:
    _apply(tmp_path, database_url, monkeypatch)
    sources = SourcePool(max_connections=2)
    moments = [NOW, NOW + timedelta(minutes=1), NOW + timedelta(hours=11), NOW + timedelta(hours=13)]
    try:
        remaining = {}
        for at in moments:  # 12:00, 12:01 and 23:00 of one day, then 01:00 of the next
            for outcome in jobs.evaluate_all(engine, now=at, sources=sources, concurrency=2, names=["alpha"]):
                assert outcome.status is not None
                remaining[at] = outcome.status.remaining_ratio
    finally:
        sources.close()
    with Session(engine) as session:
        alpha = repo.get_slo(session=session, name="alpha")
        assert alpha is not None
        kept = session.exec(select(BudgetReadingRecord).order_by(col(BudgetReadingRecord.day_s))).all()
        assert [(r.slo_id, repo.utc(r.evaluated_at), r.remaining_ratio) for r in kept] == [
            (alpha.id, NOW, remaining[NOW]),
            (alpha.id, NOW + timedelta(hours=13), remaining[NOW + timedelta(hours=13)]),
        ]
        found = readings.at_or_before(
            session=session, slo_id=alpha.id or 0, at=NOW + timedelta(hours=12), within=timedelta(days=1)
        )
        assert found is not None and repo.utc(found.evaluated_at) == NOW
        readings.prune(session=session, now=NOW + readings.RETENTION + timedelta(hours=13))
        left = session.exec(select(BudgetReadingRecord)).all()
        assert [repo.utc(r.evaluated_at) for r in left] == [NOW + timedelta(hours=13)]  # a quarter on


def _apply_many(
    tmp_path: Path, database_url: str, monkeypatch: Any, count: int, error_ratio: float = 0.0001
) -> list[str]:
    """Apply `count` SLOs (`slo-00`, ...) on the simulated source; their names."""
    names = [f"slo-{i:02}" for i in range(count)]
    source = CATALOGUE.split("---")[0].replace("error_ratio: 0.0001", f"error_ratio: {error_ratio}")
    path = tmp_path / "many.yaml"
    path.write_text(source + "".join(SLO.format(name=n) for n in names))
    monkeypatch.setenv("DATABASE_URL", database_url)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        assert cli.main(["apply", str(path)]) == 0
    return names


def _fetched(engine: Engine, sources: SourcePool, now: datetime) -> list[jobs.Item]:
    """Every SLO fetched as of `now`, ready to be stored together (what a tick's fetches give)."""
    from bot import evaluation
    from bot.catalogue.stored import slo_of

    with Session(engine) as session:
        records = repo.list_slos(session=session)
    plans = [(r, evaluation.make_plan(slo_of(r), r, now)) for r in records]
    return [(r, plan, evaluation.fetch(plan, sources.get)) for r, plan in plans]


def test_slos_stored_together_cost_a_few_statements_and_a_failing_one_is_stored_alone(
    tmp_path: Path, database_url: str, engine: Engine, monkeypatch: Any
) -> None:
    from sqlalchemy import event

    names = _apply_many(tmp_path, database_url, monkeypatch, 30)
    sources = SourcePool()
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    try:
        jobs.evaluate_all(engine, now=NOW, sources=sources, concurrency=4)  # the backfill
        steady = _fetched(engine, sources, NOW + timedelta(minutes=1))
        statements.clear()
        outcomes = jobs._store_batch(engine, steady, hooks=(), breached=set())
        # a quiet steady tick of 30 SLOs: a few statements for all, not several for each
        assert len(statements) <= 12, statements
        assert [o.name for o in outcomes] == names and all(o.status for o in outcomes)

        def hook(session: Session, tick: jobs.Tick) -> None:
            if tick.record.name == "slo-07":
                raise RuntimeError("the Slack queue is broken")

        later = _fetched(engine, sources, NOW + timedelta(minutes=2))
        outcomes = jobs._store_batch(engine, later, hooks=[hook], breached=set())
    finally:
        sources.close()
    by_name = {o.name: o for o in outcomes}
    assert by_name["slo-07"].status is None and by_name["slo-07"].error_kind == jobs.INTERNAL
    assert all(o.status is not None for n, o in by_name.items() if n != "slo-07")
    with Session(engine) as session:
        newest = {r.name: snap for r, snap in repo.latest_snapshots(session=session)}
    assert newest["slo-06"] is not None
    assert repo.utc(newest["slo-06"].evaluated_at) == NOW + timedelta(minutes=2)
    assert newest["slo-07"] is not None  # its last good evaluation, the minute before
    assert repo.utc(newest["slo-07"].evaluated_at) == NOW + timedelta(minutes=1)


def test_a_steady_tick_of_slos_in_breach_reads_nothing_per_slo_for_slack_and_the_incident_tools(
    tmp_path: Path, database_url: str, engine: Engine, monkeypatch: Any
) -> None:
    """A fleet where many SLOs burn (an outage behind a shared dependency): once their breaches are
    open and announced, a tick reads the maintenance windows once for all and asks nothing of each
    SLO's silences or signals until one has something to page or escalate."""
    from sqlalchemy import event

    from bot.conversation import Conversation
    from bot.incidents.sync import IncidentDestination
    from bot.slack.notify import SlackDestination
    from bot.store import breaches as breach_store

    _apply_many(tmp_path, database_url, monkeypatch, 30, error_ratio=0.05)  # all burning
    hooks = [Conversation([SlackDestination("C0OUTAGE"), IncidentDestination()])]
    sources = SourcePool()
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    try:
        jobs.evaluate_all(engine, now=NOW, sources=sources, concurrency=4, hooks=hooks)  # breaches open
        with Session(engine) as session:
            breached = breach_store.slos_with_open_breaches(session=session)
        assert len(breached) == 30
        steady = _fetched(engine, sources, NOW + timedelta(minutes=1))
        statements.clear()
        outcomes = jobs._store_batch(engine, steady, hooks=hooks, breached=breached)
    finally:
        sources.close()
    assert all(o.status is not None and o.alerts for o in outcomes)
    # a few statements for all 30 (they read their open signals and breaches together), none each
    assert len(statements) <= 14, "\n".join(statements)


def test_a_steady_tick_stores_many_slos_a_transaction_and_a_first_cycle_holds_few_buckets_at_once(
    tmp_path: Path, database_url: str, engine: Engine, monkeypatch: Any
) -> None:
    """What a tick stores together: a steady tick's SLOs (a bucket or two each) up to 8x the fetch
    concurrency a transaction, so a fleet's tick costs few transactions; a first cycle's (a month
    of buckets each) no more than `jobs.HELD_BUCKETS` at once, so memory stays bounded."""
    from bot.sources.base import SourceError

    names = _apply_many(tmp_path, database_url, monkeypatch, 64)
    batches: list[tuple[int, int]] = []  # (SLOs, buckets) of each stored batch
    store_batch = jobs._store_batch

    def counting(engine: Engine, items: Any, *args: Any, **kwargs: Any) -> list[jobs.Outcome]:
        fetched = [r for _, _, r in items if not isinstance(r, SourceError)]
        batches.append((len(items), sum(len(b) for r in fetched for b in r.buckets)))
        return store_batch(engine, items, *args, **kwargs)

    monkeypatch.setattr(jobs, "_store_batch", counting)
    sources = SourcePool()
    try:
        first = jobs.evaluate_all(engine, now=NOW, sources=sources, concurrency=16)
        backfill = list(batches)
        batches.clear()
        steady = jobs.evaluate_all(engine, now=NOW + timedelta(minutes=1), sources=sources, concurrency=8)
    finally:
        sources.close()
    assert [o.name for o in first] == names and all(o.status for o in first)
    assert [o.name for o in steady] == names and all(o.status for o in steady)
    # a month of buckets an SLO: a few SLOs a batch, never much more than HELD_BUCKETS held
    per_slo = max(buckets / count for count, buckets in backfill)
    assert per_slo > 1000
    assert len(backfill) >= 3
    assert all(buckets <= jobs.HELD_BUCKETS + per_slo for _, buckets in backfill), backfill
    # a steady tick: all 64 in one transaction at a concurrency of 8 (they were 2 of 32)
    assert batches == [(64, batches[0][1])], batches


def test_a_groups_members_are_stored_a_hundred_a_transaction_or_fewer_when_their_buckets_are_many() -> None:
    """A grouped SLO's first cycle fetches a window of buckets for each member: its members are
    stored a few to a transaction (what one builds stays bounded), a steady tick's 100 at a time."""
    from bot import evaluation
    from bot.buckets import FetchRange
    from bot.domain import Bucket
    from bot.sources.base import SourceUnavailable

    rng = FetchRange(NOW - timedelta(days=1), NOW, timedelta(minutes=1))

    def item(buckets: int) -> jobs.Item:
        fetched = evaluation.Fetched(
            (rng,), (tuple(Bucket(NOW, timedelta(minutes=1)) for _ in range(buckets)),)
        )
        return (None, None, fetched)  # type: ignore[return-value]

    steady = [item(1) for _ in range(250)]
    assert [len(c) for c in jobs._chunks(steady, 100, jobs.HELD_BUCKETS)] == [100, 100, 50]
    first = [item(1300) for _ in range(100)]
    runs = [len(c) for c in jobs._chunks(first, 100, jobs.HELD_BUCKETS)]
    assert runs == [24, 24, 24, 24, 4]  # 24 x 1,300 = 31,200 buckets a transaction
    # a member whose fetch failed holds nothing; one bigger than the limit is still stored
    failed = (None, None, SourceUnavailable("down"))
    mixed = [item(40_000), failed, item(1300)]
    assert [len(c) for c in jobs._chunks(mixed, 100, jobs.HELD_BUCKETS)] == [1, 2]  # type: ignore[arg-type]


def test_a_replica_shows_the_series_of_the_slos_it_evaluates_not_of_those_another_took_over(
    tmp_path: Path, database_url: str, engine: Engine, monkeypatch: Any
) -> None:
    """Per-SLO gauges in a fleet: a replica's /metrics holds the SLOs it evaluated in its last two
    ticks. One another replica took over goes after a tick of overlap (the new holder shows it by
    then), so a fleet of three does not show every SLO three times, some with old values, nor does
    each replica hold and render every SLO's series."""
    from bot.fleet import Lease
    from bot.store import leases

    _apply(tmp_path, database_url, monkeypatch)

    def shown() -> set[str]:
        return {labels["slo"] for labels, _ in samples(METRICS.render(), "slo_bot_slo_sli")} & NAMES

    def tick(minute: int, others: Sequence[str]) -> list[str]:
        at = NOW + timedelta(minutes=minute)
        with Session(engine) as session:  # another replica took and evaluated `others` this tick
            ids = [r.id for r in repo.list_slos(session=session) if r.name in others and r.id]
            taken = leases.claim(
                session=session, holder="b", tick=at, now=at, ttl=timedelta(minutes=1), limit=len(ids)
            )
            assert sorted(taken) == sorted(ids)
            leases.complete_many(session=session, slo_ids=ids, holder="b", tick=at, now=at)
            session.commit()
        lease = Lease("a", at, timedelta(minutes=1), clock=lambda: at)
        outcomes = jobs.evaluate_all(engine, now=at, sources=sources, concurrency=4, lease=lease)
        return sorted(o.name for o in outcomes)

    sources = SourcePool()
    try:
        METRICS.slos.keep_only([])
        assert tick(1, others=[]) == ["alpha", "beta", "gamma"]
        assert shown() == {"alpha", "beta", "gamma"}
        assert tick(2, others=["alpha"]) == ["beta", "gamma"]
        assert shown() == {"alpha", "beta", "gamma"}  # a tick of overlap: b shows alpha by now
        assert tick(3, others=["alpha"]) == ["beta", "gamma"]
        assert shown() == {"beta", "gamma"}
        assert tick(4, others=[]) == ["alpha", "beta", "gamma"]  # back with a
        assert shown() == {"alpha", "beta", "gamma"}
    finally:
        sources.close()


def test_console_charts_waiting_to_be_drawn_hold_no_data_and_are_all_drawn(
    tmp_path: Path, database_url: str, engine: Engine, monkeypatch: Any
) -> None:
    """Console mode draws a chart per breach opened, one at a time on a thread of its own: a tick
    that opens many breaches (a fleet-wide outage) queues their charts, each read from the store
    when its turn comes, not all read at once and held until drawn (hundreds of KB each)."""
    import threading

    from bot import console
    from bot.conversation import Conversation

    _apply_many(tmp_path, database_url, monkeypatch, 6, error_ratio=0.05)  # all burning
    loads: list[str] = []
    real_load = console.load_burn_down

    def counting_load(session: Session, slo: Any, slo_id: int, now: datetime) -> Any:
        loads.append(slo.name)
        return real_load(session, slo, slo_id, now)

    drawing = threading.Event()
    real_write = console.ChartFiles.write

    def slow_write(self: console.ChartFiles, data: Any, name: str) -> Path:
        drawing.wait(timeout=30)
        return real_write(self, data, name)

    monkeypatch.setattr(console, "load_burn_down", counting_load)
    monkeypatch.setattr(console.ChartFiles, "write", slow_write)
    out = io.StringIO()
    shown = console.ConsoleDestination(out, charts=console.ChartFiles(tmp_path / "charts"))
    sources = SourcePool()
    try:
        outcomes = jobs.evaluate_all(
            engine, now=NOW, sources=sources, concurrency=4, hooks=[Conversation([shown])]
        )
        assert all(o.changes for o in outcomes)  # six breaches opened
        assert len(loads) <= 1  # the one being drawn
        drawing.set()
        shown.flush()
    finally:
        drawing.set()
        sources.close()
    assert sorted(loads) == sorted(o.name for o in outcomes)
    charts = sorted((tmp_path / "charts").glob("*.png"))
    assert len(charts) == 6 and all(p.read_bytes()[:4] == b"\x89PNG" for p in charts)
    assert out.getvalue().count("📈 burn-down chart:") == 6


def test_an_outage_that_opens_a_breach_for_every_slo_reads_the_subscriptions_once_a_transaction(
    tmp_path: Path, database_url: str, engine: Engine, monkeypatch: Any
) -> None:
    """A shared dependency goes down and 30 SLOs of one service open their breaches in one stored
    batch: the service's subscribed channels are read once for all of them (not once a breach), the
    breaches are not read back after they open, every breach's message still goes to the channel
    subscribed then (not the default, the fallback), and a channel subscribed after a read in the
    same transaction is seen at once."""
    from sqlalchemy import event

    from bot.conversation import Conversation
    from bot.slack.notify import SlackDestination
    from bot.store import slack as slack_store
    from bot.store.models import OutboxRecord

    _apply_many(tmp_path, database_url, monkeypatch, 30, error_ratio=0.05)  # all burning
    with Session(engine) as session:
        slack_store.subscribe(session=session, service="api", channel="C0API", by="U1", now=NOW)
        session.commit()
    hooks = [Conversation([SlackDestination("C0DEFAULT")])]
    sources = SourcePool()
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    try:
        opening = _fetched(engine, sources, NOW)
        statements.clear()
        outcomes = jobs._store_batch(engine, opening, hooks=hooks, breached=set())
    finally:
        sources.close()
    assert all(o.status is not None and o.alerts for o in outcomes) and len(outcomes) == 30
    assert sum("FROM subscription" in s for s in statements) == 1, "one read for the 30 breaches"
    # nor is any breach read back to show it: the evaluation has those it opened
    read_back = [s for s in statements if re.search(r"\bFROM breach\s+WHERE", s)]
    assert not read_back, read_back
    with Session(engine) as session:
        posts = session.exec(select(OutboxRecord).where(OutboxRecord.kind == "alert_message")).all()
        assert sorted(p.breach_id for p in posts) == sorted({p.breach_id for p in posts})
        assert {p.channel for p in posts} == {"C0API"} and len(posts) == 30
        # read, then subscribed in the same transaction: seen at once, and after the commit
        assert slack_store.subscribed_channels(session=session, service="api") == ["C0API"]
        slack_store.subscribe(session=session, service="api", channel="C0MORE", by="U1", now=NOW)
        assert slack_store.subscribed_channels(session=session, service="api") == ["C0API", "C0MORE"]
        session.commit()
        assert slack_store.subscribed_channels(session=session, service="api") == ["C0API", "C0MORE"]


def test_the_alerts_an_outage_moves_are_written_with_one_flush_an_slo(
    tmp_path: Path, database_url: str, engine: Engine, monkeypatch: Any
) -> None:
    """Every SLO of a batch starts burning at once, each moving several alerts: each SLO's new alerts
    are flushed together (one flush gives them their ids for their events), not one flush an alert,
    and every transition is still recorded as an event of its own alert."""
    from sqlalchemy import event

    from bot.store.models import AlertEventRecord, AlertRecord

    _apply_many(tmp_path, database_url, monkeypatch, 12, error_ratio=0.05)
    sources = SourcePool()
    flushes: list[int] = []  # how many new alerts each flush that wrote some wrote

    def count(session: Session, _: object) -> None:
        new = sum(isinstance(o, AlertRecord) for o in session.new)  # (still as before the flush)
        if new:
            flushes.append(new)

    event.listen(Session, "after_flush", count)
    try:
        opening = _fetched(engine, sources, NOW)
        outcomes = jobs._store_batch(engine, opening, hooks=[], breached=set())
    finally:
        event.remove(Session, "after_flush", count)
        sources.close()
    transitions = sum(len(o.transitions) for o in outcomes)
    assert len(outcomes) == 12 and transitions > 12, "several alerts an SLO move"
    assert len(flushes) == 12 and sum(flushes) == transitions, flushes
    with Session(engine) as session:
        alerts = session.exec(select(AlertRecord)).all()
        events = session.exec(select(AlertEventRecord)).all()
    assert len(alerts) == transitions
    assert sorted(e.alert_id for e in events) == sorted(a.id for a in alerts)


def test_run_freezes_what_its_first_tick_kept_once_and_only_once(
    tmp_path: Path, database_url: str, engine: Engine, monkeypatch: Any
) -> None:
    """`slo-bot run` leaves what its first tick kept (each SLO's definition, plan shapes, compiled
    statements) out of the garbage collector's passes; later ticks freeze nothing more (a frozen
    object is never collected as part of a cycle)."""
    import gc

    from bot.runner import Runner

    _apply_many(tmp_path, database_url, monkeypatch, 3)
    sources = SourcePool()
    clock = [NOW]
    runner = Runner(engine, sources, concurrency=2, clock=lambda: clock[0], freeze_after_first_tick=True)
    before = gc.get_freeze_count()
    try:
        assert len(runner.tick()) == 3
        frozen = gc.get_freeze_count()
        assert frozen > before
        clock[0] += timedelta(minutes=1)
        # (frozen objects still go when nothing refers to them: the count may shrink, never grow)
        assert len(runner.tick()) == 3
        assert gc.get_freeze_count() <= frozen
        plain = Runner(engine, sources, concurrency=2, clock=lambda: clock[0] + timedelta(minutes=1))
        assert len(plain.tick()) == 3 and gc.get_freeze_count() <= frozen  # (others, as `check`: never)
    finally:
        gc.unfreeze()
        sources.close()
