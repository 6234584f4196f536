"""The alert policy: tiers, guards, suppression and the alert lifecycle, as tables."""

from datetime import UTC, datetime, timedelta

import pytest

from bot import alerting, policy
from bot.budget import WindowCounts
from bot.domain import (
    SLO,
    AlertCondition,
    AlertPolicy,
    BudgetingMethod,
    DataSource,
    Indicator,
    IndicatorKind,
    MetricQuery,
    Objective,
    Op,
    TimeWindow,
)

M = timedelta(minutes=1)
H = timedelta(hours=1)
D = timedelta(days=1)
PERIOD = timedelta(days=30)
T0 = datetime(2026, 11, 27, 12, tzinfo=UTC)


def _slo(**annotations: str) -> SLO:
    q = MetricQuery(DataSource("s", "Simulated"), "good")
    return SLO(
        "api",
        "svc",
        Indicator("i", IndicatorKind.RATIO, good=q, total=q),
        Objective(0.999),
        TimeWindow("30d", PERIOD),
        annotations=annotations,
    )


@pytest.mark.parametrize(
    ("days", "expected"),
    [(30, [14.4, 6, 3, 1]), (28, [13.44, 5.6, 2.8, 0.9333])],
)
def test_default_thresholds_follow_sloths_rule(days: int, expected: list[float]) -> None:
    burns = [t.burn_for(timedelta(days=days)) for t in policy.DEFAULT_TIERS]
    assert burns == pytest.approx(expected, abs=1e-4)
    rules = policy.policy_for(_slo(), timedelta(days=days)).rules
    assert [r.threshold for r in rules] == pytest.approx(expected, abs=1e-4)


def _counts(burns: dict[timedelta, float | None], total: float = 100_000.0) -> dict[timedelta, WindowCounts]:
    """Window counts whose burn (on a 99.9 % SLO) is as given; None: no data in that window."""
    windows = {5 * M, 30 * M, H, 2 * H, 6 * H, D, 3 * D, 10 * M}
    out = {}
    for w in windows:
        burn = burns.get(w, 0.0)
        if burn is None:
            out[w] = WindowCounts(span=w)
        else:
            out[w] = WindowCounts(good=total * (1 - burn * 0.001), total=total, covered=w, span=w)
    return out


def _signals(
    burns: dict[timedelta, float | None],
    *,
    total: float = 100_000.0,
    remaining: float | None = 0.9,
    slo: SLO | None = None,
) -> dict[str, policy.Signal]:
    rules = policy.policy_for(slo or _slo(), PERIOD)
    found = policy.signals(
        rules,
        _counts(burns, total),
        target_ratio=0.999,
        method=BudgetingMethod.OCCURRENCES,
        remaining_ratio=remaining,
    )
    return {s.key: s for s in found}


@pytest.mark.parametrize(
    ("burns", "page", "ticket"),
    [
        ({H: 15.0, 5 * M: 15.0}, True, None),  # fast burn; the ticket is held while the page fires
        ({H: 15.0, 5 * M: 2.0}, False, False),  # recovered: the short window says so
        ({H: 10.0, 5 * M: 900.0}, False, False),  # a blip: the long window says no
        ({6 * H: 7.0, 30 * M: 7.0}, True, None),
        ({D: 3.5, 2 * H: 3.5}, False, True),
        ({3 * D: 1.2, 6 * H: 1.2}, False, True),
        ({3 * D: 1.2, 6 * H: 0.5}, False, False),
    ],
)
def test_a_tier_fires_when_both_windows_burn(burns, page: bool, ticket: bool | None) -> None:
    found = _signals(burns)
    assert found[policy.PAGE].active is page
    assert found[policy.TICKET].active is ticket


def test_one_failure_among_a_handful_of_requests_does_not_page() -> None:
    # 10 requests an hour, 1 failure: burn 100 over every window, but one bad event only
    found = _signals({w: 100.0 for w in (5 * M, 30 * M, H, 6 * H)}, total=10.0)
    assert found[policy.PAGE].active is False
    # three failures in the hour clear the guard
    found = _signals({w: 300.0 for w in (5 * M, 30 * M, H, 6 * H)}, total=10.0)
    assert found[policy.PAGE].active is True


def test_no_data_holds_burn_alerts_and_raises_the_no_data_alert() -> None:
    silent = {w: None for w in (5 * M, 10 * M, 30 * M, H, 2 * H, 6 * H, D, 3 * D)}
    found = _signals(silent)
    assert found[policy.PAGE].active is None and found[policy.TICKET].active is None
    assert found[policy.NO_DATA].active is True
    assert _signals({})[policy.NO_DATA].active is False


@pytest.mark.parametrize(
    ("remaining", "active"),
    [
        (0.9, []),
        (0.5, ["budget-50"]),
        (0.2, ["budget-50", "budget-25"]),
        (-0.1, ["budget-50", "budget-25", "budget-0"]),
    ],
)
def test_budget_remaining_alerts(remaining: float, active: list[str]) -> None:
    found = _signals({}, remaining=remaining)
    assert sorted(k for k, s in found.items() if k.startswith("budget-") and s.active) == sorted(active)


def test_annotations_tune_budget_alerts_no_data_and_the_guard() -> None:
    slo = _slo(
        **{"slo-bot/budget-alerts": "10", "slo-bot/no-data-after": "30m", "slo-bot/min-bad-events": "1"}
    )
    rules = policy.policy_for(slo, PERIOD)
    assert rules.budget_thresholds == (0.1,)
    assert rules.no_data_after == 30 * M and rules.min_bad_events == 1


def test_openslo_conditions_replace_the_default_tiers() -> None:
    condition = AlertCondition("slow", "ticket", Op.GTE, 2.0, timedelta(hours=12), timedelta(minutes=15))
    slo = SLO(**{**_slo().__dict__, "alert_policies": (AlertPolicy("p", (condition,)),)})
    rules = policy.policy_for(slo, PERIOD)
    assert rules.rules == (policy.BurnRule("ticket", 12 * H, H, 2.0, Op.GTE, 15 * M),)
    assert rules.burn_windows == (H, 12 * H)


def _signal(active: bool | None, after: timedelta = timedelta(0)) -> policy.Signal:
    return policy.Signal("page", active, {"1h": 20.0}, "burn", after)


def test_alert_lifecycle_fires_once_and_resolves_once() -> None:
    state, t = alerting.step("api", None, _signal(True), T0)
    assert t is not None and t.event == "firing" and state is not None
    state, t = alerting.step("api", state, _signal(True), T0 + M)
    assert t is None  # still firing: no second announcement
    state, t = alerting.step("api", state, _signal(None), T0 + 2 * M)
    assert t is None and state is not None  # no data: keeps its state
    state, t = alerting.step("api", state, _signal(False), T0 + 3 * M)
    assert t is not None and t.event == "resolved" and t.fired_at == T0 and state is None


def test_alert_after_waits_and_a_short_blip_is_never_announced() -> None:
    state, t = alerting.step("api", None, _signal(True, 5 * M), T0)
    assert t is None and state is not None and state.state == "pending"
    state, t = alerting.step("api", state, _signal(True, 5 * M), T0 + 4 * M)
    assert t is None
    state, t = alerting.step("api", state, _signal(True, 5 * M), T0 + 5 * M)
    assert t is not None and t.event == "firing"
    blip, t = alerting.step("api", None, _signal(True, 5 * M), T0)
    gone, t = alerting.step("api", blip, _signal(False, 5 * M), T0 + M)
    assert gone is None and t is None
