"""Tiers, fetch plans, rollups and window sums, checked against brute-force sums."""

import itertools
import random
from datetime import UTC, datetime, timedelta

import pytest

from bot.buckets import (
    HOUR,
    MINUTE,
    FetchRange,
    Tier,
    plan_fetches,
    rollup,
    tier_ranges,
    tiers_for,
    window_counts,
)
from bot.domain import (
    SLO,
    Bucket,
    BudgetingMethod,
    DataSource,
    Indicator,
    IndicatorKind,
    MetricQuery,
    Objective,
    TimeWindow,
)

NOW = datetime(2026, 11, 27, 12, 37, tzinfo=UTC)
TIERS = (
    Tier(MINUTE, timedelta(hours=7)),
    Tier(timedelta(minutes=5), timedelta(days=3, hours=1)),
    Tier(HOUR, None),
)


def _slo(method: BudgetingMethod = BudgetingMethod.OCCURRENCES, slice_: timedelta | None = None) -> SLO:
    q = MetricQuery(DataSource("s", "Simulated"), "good")
    return SLO(
        name="x",
        service="svc",
        indicator=Indicator("i", IndicatorKind.RATIO, good=q, total=q),
        objective=Objective(0.999, timeslice_window=slice_, timeslice_target_ratio=0.9 if slice_ else None),
        window=TimeWindow("30d", timedelta(days=30)),
        budgeting_method=method,
    )


def _covers(ranges: list[FetchRange], start: datetime, end: datetime) -> None:
    assert ranges[0].start <= start and ranges[-1].end == end
    for a, b in itertools.pairwise(ranges):
        assert a.end == b.start, "ranges must tile without gap or overlap"
    for r in ranges:
        assert (r.end - r.start) % r.step == timedelta(0)
        assert r.start.timestamp() % r.step.total_seconds() == 0


def test_first_evaluation_backfills_the_window_coarse_where_old() -> None:
    needed = NOW - timedelta(days=30, hours=1)
    plan = plan_fetches(
        needed_from=needed, now=NOW, covered_from=None, covered_to=None, tiers=TIERS, direct=True
    )
    _covers(plan, needed, NOW)
    assert [r.step for r in plan] == [HOUR, timedelta(minutes=5), MINUTE]
    points = sum((r.end - r.start) / r.step for r in plan)
    assert points < 2000  # instead of 43,200 one-minute points


def test_steady_state_refetches_only_the_settle_window() -> None:
    plan = plan_fetches(
        needed_from=NOW - timedelta(days=30),
        now=NOW,
        covered_from=NOW - timedelta(days=30),
        covered_to=NOW - MINUTE,
        tiers=TIERS,
        direct=True,
    )
    assert plan == [FetchRange(NOW - timedelta(minutes=6), NOW, MINUTE)]


def test_after_a_long_pause_the_plan_realigns_to_coarser_buckets() -> None:
    plan = plan_fetches(
        needed_from=NOW - timedelta(days=30),
        now=NOW,
        covered_from=NOW - timedelta(days=30),
        covered_to=NOW - timedelta(days=2),
        tiers=TIERS,
        direct=True,
    )
    _covers(plan, NOW - timedelta(days=2, minutes=5), NOW)


def test_timeslice_slos_fetch_everything_at_the_slice_step() -> None:
    tiers = tiers_for(_slo(BudgetingMethod.TIMESLICES, timedelta(minutes=10)), timedelta(days=3))
    assert [t.resolution for t in tiers] == [timedelta(minutes=10), HOUR]
    plan = plan_fetches(
        needed_from=NOW - timedelta(days=7),
        now=NOW,
        covered_from=None,
        covered_to=None,
        tiers=tiers,
        direct=False,
    )
    assert {r.step for r in plan} == {timedelta(minutes=10)}


def _minutes(count: int, seed: int = 1) -> list[Bucket]:
    rng = random.Random(seed)
    start = NOW - count * MINUTE
    out = []
    for i in range(count):
        total = rng.randint(0, 500)
        out.append(
            Bucket(
                start + i * MINUTE,
                MINUTE,
                good=total - rng.randint(0, total // 10),
                total=total,
                covered=MINUTE if total else timedelta(0),
            )
        )
    return out


def test_rollup_keeps_every_event_and_marks_missing_minutes_uncovered() -> None:
    minutes = _minutes(240)
    del minutes[30:45]  # a gap: never fetched
    hours = rollup(minutes, HOUR)
    assert sum(b.total for b in hours) == sum(b.total for b in minutes)
    assert sum(b.good for b in hours) == sum(b.good for b in minutes)
    assert all(b.resolution == HOUR and b.start.minute == 0 for b in hours)
    assert sum((b.covered for b in hours), timedelta()) == sum((b.covered for b in minutes), timedelta())


@pytest.mark.parametrize("window_minutes", [5, 30, 60, 120, 360, 1440])
def test_window_sums_equal_brute_force_over_mixed_resolutions(window_minutes: int) -> None:
    minutes = _minutes(3 * 1440)
    boundary = NOW - timedelta(hours=7)
    fine = [b for b in minutes if b.start >= boundary]
    coarse = rollup([b for b in minutes if b.start < boundary], timedelta(minutes=5))
    stored = sorted(coarse + fine, key=lambda b: b.start)
    w = timedelta(minutes=window_minutes)
    counts = window_counts(stored, NOW, [w])[w]
    inside = [b for b in minutes if b.start >= NOW - w]
    # windows inside the 1-minute tier are exact; longer ones may start inside a 5-minute bucket
    # and count its share pro rata
    tolerance = 1e-9 if w <= timedelta(hours=7) else 5e-3
    assert counts.total == pytest.approx(sum(b.total for b in inside), rel=tolerance)
    assert counts.good == pytest.approx(sum(b.good for b in inside), rel=tolerance)
    assert counts.span == w


def test_a_window_starting_inside_a_bucket_counts_its_share() -> None:
    hours = [
        Bucket(NOW - timedelta(hours=3) + i * HOUR, HOUR, good=60, total=60, covered=HOUR) for i in range(3)
    ]
    w = timedelta(minutes=90)
    counts = window_counts(hours, NOW, [w])[w]
    assert counts.total == pytest.approx(90)
    assert counts.coverage_ratio == pytest.approx(1.0)


def test_a_range_wholly_older_than_the_fine_tier_is_asked_once() -> None:
    """[start, end) two weeks back, with tiers counted from now: one hourly range, nothing after end
    (the finer tiers' bounds lie past end and must not stretch the range)."""
    now = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    tiers = (
        Tier(timedelta(minutes=1), timedelta(hours=7)),
        Tier(timedelta(minutes=5), timedelta(days=3, hours=1)),
        Tier(timedelta(hours=1), None),
    )
    start, end = now - timedelta(days=16), now - timedelta(days=14)
    ranges = tier_ranges(start, end, now, tiers, direct=True)
    assert ranges == [FetchRange(start, end, timedelta(hours=1))]
