"""Budget-remaining alerts do not flap around their threshold: once fired, one clears only when the
remaining budget is back above its threshold plus a margin (2 percentage points)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot import alerting, policy
from bot.alerting import OpenAlert
from bot.domain import (
    SLO,
    BudgetingMethod,
    DataSource,
    Indicator,
    IndicatorKind,
    MetricQuery,
    Objective,
    TimeWindow,
)

T0 = datetime(2026, 11, 27, 12, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def _slo() -> SLO:
    q = MetricQuery(DataSource("s", "Simulated"), "good")
    return SLO(
        "api",
        "svc",
        Indicator("i", IndicatorKind.RATIO, good=q, total=q),
        Objective(0.999),
        TimeWindow("30d", timedelta(days=30)),
    )


def _events(remainings: list[float | None], key: str = "budget-50") -> list[str]:
    """Feed remaining budgets through the policy and the alert lifecycle, one minute apart."""
    rules = policy.policy_for(_slo(), timedelta(days=30))
    current: OpenAlert | None = None
    events = []
    for i, remaining in enumerate(remainings):
        found = policy.signals(
            rules, {}, target_ratio=0.999, method=BudgetingMethod.OCCURRENCES, remaining_ratio=remaining
        )
        signal = next(s for s in found if s.key == key)
        current, transition = alerting.step("api", current, signal, T0 + i * MINUTE)
        if transition is not None:
            events.append(f"{i}:{transition.event}")
    return events


@pytest.mark.parametrize(
    ("remainings", "expected"),
    [
        # wobbling a point either side of 50 %: one firing, no resolution
        ([0.51, 0.499, 0.505, 0.498, 0.51, 0.495, 0.515], ["1:firing"]),
        # back to exactly threshold + margin is still inside the band; above it clears
        ([0.6, 0.5, 0.52, 0.5201], ["1:firing", "3:resolved"]),
        # inside the band before it ever fired: nothing fires
        ([0.6, 0.515, 0.51, 0.6], []),
        # a clear recovery clears at once, and a new crossing fires again
        ([0.4, 0.7, 0.49], ["0:firing", "1:resolved", "2:firing"]),
        # no data keeps the alert as it is
        ([0.49, None, 0.55], ["0:firing", "2:resolved"]),
    ],
)
def test_budget_alert_clears_only_above_threshold_plus_margin(
    remainings: list[float | None], expected: list[str]
) -> None:
    assert _events(remainings) == expected


def test_the_zero_budget_alert_clears_only_once_two_points_are_back() -> None:
    assert _events([0.01, -0.001, 0.001, -0.0005, 0.019, 0.021], key="budget-0") == ["1:firing", "5:resolved"]


def test_the_margin_is_two_percentage_points() -> None:
    assert policy.policy_for(_slo(), timedelta(days=30)).budget_margin == pytest.approx(0.02)
