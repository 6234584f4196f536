"""The golden numbers of SPEC.md, as tables."""

from datetime import UTC, datetime, timedelta

import pytest

from bot import budget
from bot.budget import WindowCounts
from bot.domain import Bucket, BudgetingMethod

OCC = BudgetingMethod.OCCURRENCES


@pytest.mark.parametrize(
    ("target", "period", "minutes"),
    [
        (0.999, timedelta(days=30), 43.2),
        (0.999, timedelta(days=28), 40.32),
        (0.9999, timedelta(days=30), 4.32),
        (0.99, timedelta(days=7), 100.8),
    ],
)
def test_budget_as_full_outage_time(target: float, period: timedelta, minutes: float) -> None:
    assert budget.budget_time(target, period) / timedelta(minutes=1) == pytest.approx(minutes)


def test_full_outage_on_999_detected_by_14_4x_over_1h_after_51_84_s() -> None:
    # traffic is even over the hour; the outage makes every request of its last `x` seconds fail
    def burn_after(seconds: float) -> float:
        counts = WindowCounts(good=3600 - seconds, total=3600)
        value = budget.burn_rate(budget.sli_ratio(counts, OCC), 0.999)
        assert value is not None
        return value

    assert burn_after(51.84) == pytest.approx(14.4)
    assert burn_after(51.0) < 14.4 < burn_after(52.0)


def test_one_hour_full_outage_of_90_percent_slo_spends_1_39_percent_of_30d() -> None:
    minutes = 30 * 24 * 60
    counts = WindowCounts(good=minutes - 60, total=minutes)
    sli = budget.sli_ratio(counts, OCC)
    assert sli is not None
    assert budget.budget_consumed_ratio(sli, 0.90) == pytest.approx(0.01389, abs=1e-5)


def test_ten_requests_one_failure_on_999_is_burn_100() -> None:
    sli = budget.sli_ratio(WindowCounts(good=9, total=10), OCC)
    assert budget.burn_rate(sli, 0.999) == pytest.approx(100)


@pytest.mark.parametrize(
    ("counts", "method", "expected"),
    [
        (WindowCounts(good=0, total=0), OCC, None),  # no traffic is no data, never 100 %
        (WindowCounts(good=12, total=10), OCC, 1.0),  # good > total is clamped
        (WindowCounts(good_slices=57, slices=60), BudgetingMethod.TIMESLICES, 0.95),
        (WindowCounts(ratio_sum=59.4, slices=60), BudgetingMethod.RATIO_TIMESLICES, 0.99),
        (WindowCounts(slices=0), BudgetingMethod.TIMESLICES, None),
    ],
)
def test_sli(counts: WindowCounts, method: BudgetingMethod, expected: float | None) -> None:
    assert budget.sli_ratio(counts, method) == (None if expected is None else pytest.approx(expected))


@pytest.mark.parametrize(
    ("remaining", "burn", "expected_days"),
    [
        (0.5, 1.0, 15.0),
        (1.0, 14.4, 30 / 14.4),
        (0.5, 0.0, None),
        (0.0, 3.0, None),
        (0.2, None, None),
    ],
)
def test_time_to_exhaustion(remaining: float, burn: float | None, expected_days: float | None) -> None:
    left = budget.time_to_exhaustion(remaining, burn, timedelta(days=30))
    if expected_days is None:
        assert left is None
    else:
        assert left is not None and left / timedelta(days=1) == pytest.approx(expected_days)


def test_budget_consumed_may_exceed_one_and_remaining_goes_negative() -> None:
    consumed = budget.budget_consumed_ratio(0.997, 0.999)
    assert consumed == pytest.approx(3.0)
    assert budget.state_of(0.997, 1 - consumed, burning=True) == "exhausted"
    assert budget.state_of(None, None, burning=False) == "no_data"


T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
HOUR = timedelta(hours=1)


@pytest.mark.parametrize(
    ("remaining", "burn", "period_end", "expected"),
    [
        (0.6, 0.4, None, T0 + 45 * DAY),  # the 30-day window's average pace: 0.6 / 0.4 of 30 days
        (0.6, 2.0, None, T0 + 9 * DAY),  # at 2x over 6h: 0.6 / 2 of 30 days
        (0.5, 0.0, None, None),  # nothing burns: never
        (-0.109, 3.0, None, None),  # already spent: not "runs out", "exhausted since"
        (0.0, 3.0, None, None),
        (0.5, None, None, None),  # no data over the window
        (0.6, 2.0, T0 + 10 * DAY, T0 + 9 * DAY),  # a calendar month runs out before its reset
        (0.6, 2.0, T0 + 9 * DAY, None),  # ... or resets first
        (None, 2.0, None, None),
    ],
)
def test_exhaustion_at(
    remaining: float | None, burn: float | None, period_end: datetime | None, expected: datetime | None
) -> None:
    assert budget.exhaustion_at(remaining, burn, 30 * DAY, T0, period_end) == expected


def _hours(bad: list[float], total: float = 100.0, start: datetime = T0) -> list[Bucket]:
    return [Bucket(start + i * HOUR, HOUR, good=total - b, total=total) for i, b in enumerate(bad)]


@pytest.mark.parametrize(
    ("bad", "expected"),
    [
        ([0, 0, 0, 0], None),  # nothing failed
        ([0, 10, 0, 0], T0 + 2 * HOUR),  # 10 of 200 > 1 %: spent by the second hour's failures
        ([0, 5, 0, 0], T0 + 2 * HOUR),  # 5/200, 5/300, 5/400: still over 1 % at the end
        ([0, 2.5, 0, 2.5], T0 + 4 * HOUR),  # spent at 2.5/200, back at 2.5/300, spent again at 5/400
        ([4, 0, 0], T0 + HOUR),  # spent from its first hour: 4/100, 4/200, 4/300
        ([1.5, 0, 0], None),  # spent at 1.5/100, then the good events bring it back: 1.5/300
    ],
)
def test_spent_since_in_a_calendar_period(bad: list[float], expected: datetime | None) -> None:
    buckets = _hours(bad)
    assert budget.spent_since(list(reversed(buckets)), OCC, 0.99) == expected


def test_spent_since_counts_slices_for_timeslices_and_skips_hours_without_data() -> None:
    empty = Bucket(T0, HOUR)  # no data: neither spent nor good
    slices = [
        Bucket(T0 + HOUR, HOUR, good_slices=50, slices=60),
        Bucket(T0 + 2 * HOUR, HOUR, good_slices=60, slices=60),
    ]
    # 10 bad slices of 60, then of 120: 8.3 % > 5 %
    assert budget.spent_since([empty, *slices], BudgetingMethod.TIMESLICES, 0.95) == T0 + 2 * HOUR
    assert budget.spent_since([empty], BudgetingMethod.TIMESLICES, 0.95) is None


MIN = timedelta(minutes=1)


@pytest.mark.parametrize(
    ("remaining", "fired_at", "expected"),
    [
        # (oldest first, a minute apart from T0) the newest run at or below 0 starts at minute 2
        ([0.1, -0.01, 0.02, 0.0, -0.05, -0.109], None, (T0 + 3 * MIN, True)),
        # spent in every evaluation kept: the signal fired earlier says since when
        ([-0.02, -0.05, -0.109], T0 - 2 * DAY, (T0 - 2 * DAY, True)),
        # ... without a signal, only that it was spent at the oldest evaluation kept, or earlier
        ([-0.02, -0.05, -0.109], None, (T0, False)),
        # a signal that fired after the run began (its alertAfter) does not move the run's start
        ([0.2, -0.02, -0.109], T0 + 2 * MIN, (T0 + MIN, True)),
        ([-0.02, 0.3], T0, None),  # budget left now
        ([None, None], T0, None),  # no data
        ([0.1, -0.01, None, -0.109], None, (T0 + MIN, True)),  # a no-data evaluation breaks nothing
    ],
)
def test_spent_since_evaluations(
    remaining: list[float | None], fired_at: datetime | None, expected: tuple[datetime, bool] | None
) -> None:
    evaluations = [(T0 + i * MIN, r) for i, r in enumerate(remaining)]
    assert budget.spent_since_evaluations(list(reversed(evaluations)), fired_at) == expected


def test_paces_are_the_window_average_and_the_6h_burn() -> None:
    status = budget.Status(
        evaluated_at=T0,
        sli=0.9996,
        good=9996.0,
        total=10000.0,
        consumed_ratio=0.4,
        remaining_ratio=0.6,
        burn_rates={},
        exhaustion_at=None,
        state="burning",
        coverage_ratio=1.0,
    )
    average, six = budget.paces(status, 2.0, period=30 * DAY, period_end=None)
    assert (average.window, average.burn, average.runs_out_at) == (None, 0.4, T0 + 45 * DAY)
    assert (six.window, six.burn, six.runs_out_at) == (6 * HOUR, 2.0, T0 + 9 * DAY)
