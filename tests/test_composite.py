"""A composite SLO's weighted budget (bot/composite.py), against numbers computed by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot import budget, composite
from bot.budget import WindowCounts
from bot.composite import PartBuckets, PartCounts
from bot.domain import Bucket, BudgetingMethod

OCC = BudgetingMethod.OCCURRENCES
HOUR = timedelta(hours=1)


def occurrences(good: float, total: float) -> WindowCounts:
    return WindowCounts(good=good, total=total, covered=HOUR, span=HOUR)


def slices(good: float, count: float) -> WindowCounts:
    return WindowCounts(good_slices=good, slices=count, ratio_sum=good, covered=HOUR, span=HOUR)


NO_DATA = WindowCounts(span=HOUR)


@pytest.mark.parametrize(
    ("parts", "method", "target", "burn", "sli"),
    [
        # equal targets: the weighted mean of the error ratios, (1 x 0.2 % + 3 x 0 %) / 4 = 0.05 %;
        # pooling the events instead would give 2 / 1,010 = 0.198 %: the busy part would drown the other
        ([(1, 0.999, occurrences(998, 1000)), (3, 0.999, occurrences(10, 10))], OCC, 0.999, 0.5, 0.9995),
        # each part burns 2x its own budget (0.2 % of 99.9 %, 2 % of 99 %): the composite burns 2x;
        # objective 1 - (1 x 0.1 % + 3 x 1 %) / 4 = 99.225 %, SLI 1 - 2 x 0.775 % = 98.45 %
        (
            [(1, 0.999, occurrences(9980, 10000)), (3, 0.99, occurrences(980, 1000))],
            OCC,
            0.99225,
            2.0,
            0.9845,
        ),
        # a part without data in the window: the others carry the weight
        ([(1, 0.999, occurrences(998, 1000)), (3, 0.99, NO_DATA)], OCC, 0.99225, 2.0, 1 - 2 * 0.00775),
        # Timeslices: 57 of 60 good slices against 95 % is burn 1, all good is 0: (1 + 0) / 2
        (
            [(1, 0.95, slices(57, 60)), (1, 0.95, slices(60, 60))],
            BudgetingMethod.TIMESLICES,
            0.95,
            0.5,
            0.975,
        ),
        # mixed targets and a total outage: burn (1000 + 0) / 2 = 500 would be an error ratio of
        # 500 x 5.05 % > 1; the ratio stops at 1 (every event failed), the burn at 1 / 5.05 %
        ([(1, 0.999, occurrences(0, 100)), (1, 0.9, occurrences(100, 100))], OCC, 0.9495, 1 / 0.0505, 0.0),
    ],
)
def test_weighted_burn_and_sli(
    parts: list[tuple[float, float, WindowCounts]],
    method: BudgetingMethod,
    target: float,
    burn: float,
    sli: float,
) -> None:
    shares = [PartCounts(w, o, {HOUR: c}) for w, o, c in parts]
    assert composite.target_ratio([(w, o) for w, o, _ in parts]) == pytest.approx(target)
    counts = composite.combine(shares, method, [HOUR])[HOUR]
    found = budget.sli_ratio(counts, method)
    assert found == pytest.approx(sli)
    assert budget.burn_rate(found, target) == pytest.approx(burn)


def test_budget_consumed_is_the_weighted_mean_of_the_parts() -> None:
    # over the period: part A spent 40 % of its 99.9 % budget, part B 160 % of its 99 % one
    month = timedelta(days=30)
    a = WindowCounts(good=1_000_000 - 400, total=1_000_000, span=month)
    b = WindowCounts(good=50_000 - 800, total=50_000, span=month)
    counts = composite.combine(
        [PartCounts(3, 0.999, {month: a}), PartCounts(1, 0.99, {month: b})], OCC, [month]
    )
    target = composite.target_ratio([(3, 0.999), (1, 0.99)])
    sli = budget.sli_ratio(counts[month], OCC)
    assert sli is not None
    # (3 x 0.4 + 1 x 1.6) / 4 = 0.7 consumed, 30 % left
    assert budget.budget_consumed_ratio(sli, target) == pytest.approx(0.7)


def test_no_part_with_data_is_no_data() -> None:
    counts = composite.combine(
        [PartCounts(1, 0.99, {HOUR: NO_DATA}), PartCounts(2, 0.9, {HOUR: NO_DATA})], OCC, [HOUR]
    )
    assert budget.sli_ratio(counts[HOUR], OCC) is None
    assert composite.burn_rate([(1, None), (2, None)]) is None


# --- a spent composite budget: when it is back ----------------------------------------------------

WEEK = timedelta(days=7)


def hourly(now: datetime, total: float, bad: dict[int, float]) -> list[Bucket]:
    """A week of hourly buckets ending at `now`; `bad`: failures by hours ago (of the bucket's start)."""
    return [
        Bucket(now - k * HOUR, HOUR, good=total - bad.get(k, 0.0), total=total, covered=HOUR)
        for k in range(168, 0, -1)
    ]


@pytest.mark.parametrize(
    ("weights", "back_in"),
    [
        # `front` (99 %, 1,000 an hour): 2,000 failed 150 h ago and 500 a day ago, 2,500 of 1,680
        # allowed (1.488 spent); `back` (99.9 %, 100 an hour): 10 failed 140 h ago and 12 two days
        # ago, 22 of 16.8 (1.310 spent). Weighing 1 and 3: (1.488 + 3 x 1.310) / 4 = 1.354 spent.
        # 150 h ago leaves the week 19 h from now: (0.298 + 3.929) / 4 = 1.057, still spent;
        # 140 h ago leaves it 29 h from now: (0.298 + 3 x 0.714) / 4 = 0.610: back
        ((1.0, 3.0), timedelta(hours=29)),
        # weighing alike, (1.488 + 1.310) / 2 = 1.399; after 150 h ago (0.298 + 1.310) / 2 = 0.804
        ((1.0, 1.0), timedelta(hours=19)),
    ],
)
def test_a_spent_composite_budget_is_back_once_its_parts_failures_age_out(
    weights: tuple[float, float], back_in: timedelta
) -> None:
    now = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    front = PartBuckets(weights[0], 0.99, hourly(now, 1000.0, {150: 2000.0, 24: 500.0}))
    back = PartBuckets(weights[1], 0.999, hourly(now, 100.0, {140: 10.0, 48: 12.0}))
    assert composite.budget_back([front, back], OCC, WEEK, now) == now + back_in


def test_a_composite_budget_with_some_left_is_back_now_and_a_part_without_data_counts_not() -> None:
    now = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    # 500 of 1,680 failed (0.298 spent); the other part had no events all week: left out of the mean
    front = PartBuckets(1.0, 0.99, hourly(now, 1000.0, {24: 500.0}))
    quiet = PartBuckets(3.0, 0.999, hourly(now, 0.0, {}))
    assert composite.budget_back([front, quiet], OCC, WEEK, now) == now
    # 2,000 failed besides, 150 h ago (1.488 spent): back when they leave the week, 19 h from now
    front = PartBuckets(1.0, 0.99, hourly(now, 1000.0, {150: 2000.0, 24: 500.0}))
    assert composite.budget_back([front, quiet], OCC, WEEK, now) == now + timedelta(hours=19)
    # every event of the last two hours failed (2,000 of 1,680): back when the older hour leaves
    front = PartBuckets(1.0, 0.99, hourly(now, 1000.0, {2: 1000.0, 1: 1000.0}))
    assert composite.budget_back([front, quiet], OCC, WEEK, now) == now + WEEK - HOUR
