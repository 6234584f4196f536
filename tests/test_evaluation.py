"""Fetch, store and evaluate against the simulated source, whose true counts are known exactly."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from bot import evaluation
from bot.checksums import data_checksum
from bot.domain import (
    SLO,
    DataSource,
    Indicator,
    IndicatorKind,
    MetricQuery,
    Objective,
    TimeWindow,
)
from bot.sources.simulated import SimulatedSource
from bot.store import history, repo
from bot.store.models import SLORecord

DS = DataSource(
    "demo",
    "Simulated",
    {
        "seed": 3,
        "requests_per_minute": 600,
        "error_ratio": 0.0005,
        "incidents": [
            {"every": "1d", "offset": "14h", "duration": "20m", "error_ratio": 0.01},
            {"start": "2026-11-27T11:50:00Z", "duration": "30m", "error_ratio": 0.05},
        ],
        "gaps": [{"start": "2026-11-26T02:00:00Z", "duration": "40m"}],
    },
)
SOURCE = SimulatedSource(DS)
SLO_ = SLO(
    name="checkout-availability",
    service="checkout",
    indicator=Indicator(
        "avail", IndicatorKind.RATIO, bad=MetricQuery(DS, "bad"), total=MetricQuery(DS, "total")
    ),
    objective=Objective(0.999),
    window=TimeWindow("30d", timedelta(days=30)),
)
T0 = datetime(2026, 11, 27, 12, 13, 30, tzinfo=UTC)


def truth(start: datetime, end: datetime) -> tuple[int, int]:
    good = total = 0
    for minute in range(int(start.timestamp()) // 60, int(end.timestamp()) // 60):
        counts = SOURCE.minute(minute)
        if counts is not None:
            good, total = good + counts[0], total + counts[1]
    return good, total


def _record(session: Session, slo: SLO = SLO_) -> SLORecord:
    repo.upsert_slo(
        session=session,
        name=slo.name,
        service="checkout",
        documents=[],
        data_checksum=data_checksum(slo),
        now=T0,
    )
    session.commit()
    record = repo.get_slo(session=session, name=slo.name)
    assert record is not None
    return record


def _evaluate(engine: Engine, now: datetime):
    with Session(engine) as session:
        record = repo.get_slo(session=session, name=SLO_.name) or _record(session)
        plan = evaluation.make_plan(SLO_, record, now)
        fetched = evaluation.fetch(plan, lambda _ds: SOURCE)
        evaluation.store(session, record, plan, fetched)
        status = evaluation.assess(session, record, plan).status
        session.commit()
        return plan, status, history.count_buckets(session=session, slo_id=record.id)


def _assert_matches_truth(plan: evaluation.Plan, status, exact_up_to: timedelta) -> None:
    end = plan.end
    good, total = truth(end - timedelta(days=30), end)
    assert status.total == pytest.approx(total, rel=1e-3)
    assert status.good == pytest.approx(good, rel=1e-3)
    assert status.sli == pytest.approx(good / total, abs=1e-6)
    for window, burn in status.burn_rates.items():
        g, t = truth(end - window, end)
        expected = (1 - g / t) / 0.001
        tolerance = 1e-9 if window <= exact_up_to else 0.01
        assert burn == pytest.approx(expected, rel=tolerance, abs=1e-9), window


def test_backfill_then_incremental_updates_agree_with_true_counts(engine: Engine) -> None:
    plan, status, rows = _evaluate(engine, T0)
    # the first evaluation backfills 30 days: coarse where old, fine where windows need it
    assert plan.ranges[0].start <= T0 - timedelta(days=30)
    _assert_matches_truth(plan, status, exact_up_to=timedelta(hours=6))
    assert status.state == "burning"  # the 5 % incident ongoing at 12:13 burns ~50x
    for later in (
        timedelta(minutes=1),
        timedelta(minutes=10),
        timedelta(hours=8),
        timedelta(days=2, minutes=3),
    ):
        plan, status, rows = _evaluate(engine, T0 + later)
        assert len(plan.ranges) <= 3
        _assert_matches_truth(plan, status, exact_up_to=timedelta(hours=6))
    # bounded rows: 7 h of minutes, 3 d 1 h of 5-minute buckets, hourly for the rest of 30 d
    assert rows <= 7 * 60 + 5 + (73 * 12 + 12) + (30 * 24 + 2)


def test_a_gap_is_no_data_not_good(engine: Engine) -> None:
    at = datetime(2026, 11, 26, 2, 35, tzinfo=UTC)
    _plan, status, _ = _evaluate(engine, at)
    # 02:05-02:35 lies inside the gap (02:00-02:40): no data, where "no errors" would be burn 0
    assert status.burn_rates[timedelta(minutes=5)] is None
    assert status.burn_rates[timedelta(minutes=30)] is None
    assert status.burn_rates[timedelta(hours=1)] is not None
    assert status.coverage_ratio < 1.0


def test_source_outage_changes_nothing_stored(engine: Engine) -> None:
    from bot.sources.base import SourceUnavailable

    _evaluate(engine, T0)

    def down(_ds: DataSource) -> SimulatedSource:
        raise SourceUnavailable("prometheus at http://x: timed out")

    with Session(engine) as session:
        record = repo.get_slo(session=session, name=SLO_.name)
        assert record is not None
        before = (history.count_buckets(session=session, slo_id=record.id), record.covered_to)
        plan = evaluation.make_plan(SLO_, record, T0 + timedelta(minutes=30))
        with pytest.raises(SourceUnavailable):
            evaluation.fetch(plan, down)
        assert (history.count_buckets(session=session, slo_id=record.id), record.covered_to) == before


def test_every_tier_holds_only_its_own_resolution_tick_after_tick(engine: Engine) -> None:
    """Each tick rolls up only the buckets that crossed a tier's cut-off since the tick before (its
    roll-up reads from the last cut-off on): over an hour of ticks a minute apart, across twelve
    5-minute cut-offs and an hourly one, no minute is left behind older than 7 hours and no 5-minute
    bucket older than the longest window and an hour, and the sums stay true."""
    from bot.buckets import HOUR, MINUTE, floor_time

    plan, _status, _ = _evaluate(engine, T0)
    for minute in range(1, 66):
        plan, status, _ = _evaluate(engine, T0 + minute * MINUTE)
    _assert_matches_truth(plan, status, exact_up_to=timedelta(hours=6))
    longest = max(plan.policy.windows)
    with Session(engine) as session:
        record = repo.get_slo(session=session, name=SLO_.name)
        assert record is not None and record.id is not None
        stored = history.load_buckets(session=session, slo_id=record.id, since=plan.end - timedelta(days=31))
    minutes_from = floor_time(plan.end - 7 * HOUR, 5 * MINUTE)
    fives_from = floor_time(plan.end - longest - HOUR, HOUR)
    assert min(b.start for b in stored if b.resolution == MINUTE) == minutes_from
    assert min(b.start for b in stored if b.resolution == 5 * MINUTE) == fives_from
    assert all(b.resolution == HOUR for b in stored if b.start < fives_from)


def test_a_tier_kept_shorter_than_the_minutes_still_rolls_up_what_the_minutes_become(engine: Engine) -> None:
    """An SLO whose longest burn window is an hour keeps 5-minute buckets for 2 hours but minutes for
    7: each 5-minute bucket made from minutes is already older than its own tier, and is merged into
    hours in the same tick, not left behind (the hourly cut-off moves only once an hour)."""
    from dataclasses import replace

    from bot.buckets import HOUR, MINUTE, floor_time
    from bot.domain import AlertCondition, AlertPolicy, Op

    slo = replace(
        SLO_,
        name="checkout-short-windows",
        alert_policies=(
            AlertPolicy("fast", (AlertCondition("fast", "page", Op.GT, 14.4, HOUR, timedelta(0)),)),
        ),
    )
    with Session(engine) as session:
        _record(session, slo)
    slo_id = 0
    for minute in range(66):
        with Session(engine) as session:
            record = repo.get_slo(session=session, name=slo.name)
            assert record is not None and record.id is not None
            slo_id = record.id
            plan = evaluation.make_plan(slo, record, T0 + minute * MINUTE)
            evaluation.store(session, record, plan, evaluation.fetch(plan, lambda _ds: SOURCE))
            session.commit()
    assert max(plan.policy.windows) == HOUR
    with Session(engine) as session:
        stored = history.load_buckets(session=session, slo_id=slo_id, since=plan.end - timedelta(days=31))
    fives_from = floor_time(plan.end - 2 * HOUR, HOUR)
    assert [b.start for b in stored if b.resolution == 5 * MINUTE and b.start < fives_from] == []
    assert min(b.start for b in stored if b.resolution == MINUTE) == floor_time(
        plan.end - 7 * HOUR, 5 * MINUTE
    )
