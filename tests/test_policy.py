from datetime import timedelta

import pytest

from bot import policy


@pytest.mark.parametrize(
    ("days", "expected"),
    [(30, [14.4, 6, 3, 1]), (28, [13.44, 5.6, 2.8, 0.9333])],
)
def test_default_thresholds_follow_sloths_rule(days: int, expected: list[float]) -> None:
    burns = [t.burn_for(timedelta(days=days)) for t in policy.DEFAULT_TIERS]
    assert burns == pytest.approx(expected, abs=1e-4)


def test_tier_fires_only_when_both_windows_exceed() -> None:
    h = timedelta(hours=1)
    five = timedelta(minutes=5)
    period = timedelta(days=30)
    assert policy.firing_tiers({h: 15.0, five: 15.0}, period)[0].severity == policy.PAGE
    assert policy.firing_tiers({h: 15.0, five: 2.0}, period) == []  # recovered: short window
    assert policy.firing_tiers({h: 10.0, five: 900.0}, period) == []  # a blip: long window
    assert policy.firing_tiers({h: None, five: 900.0}, period) == []
