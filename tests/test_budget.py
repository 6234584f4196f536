"""The golden numbers of SPEC.md, as tables."""

from datetime import timedelta

import pytest

from bot import budget
from bot.budget import WindowCounts
from bot.domain import BudgetingMethod

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
