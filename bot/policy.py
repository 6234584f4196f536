"""Alert policy: the default multi-window multi-burn-rate tiers and which of them fire.

Pure: burn rates in, decisions out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from bot.domain import SLO

PAGE = "page"
TICKET = "ticket"
BASE_PERIOD = timedelta(days=30)


@dataclass(frozen=True)
class BurnTier:
    """Fires when the burn over both `long` and `short` exceeds `burn`."""

    severity: str
    long: timedelta
    short: timedelta
    budget_spent_ratio: float  # budget spent over `long` when the tier triggers

    def burn_for(self, period: timedelta) -> float:
        """Sloth's rule: factor = budget% * period_hours / long_window_hours (30d: 14.4, 6, 3, 1)."""
        return self.budget_spent_ratio * (period / self.long)


DEFAULT_TIERS: tuple[BurnTier, ...] = (
    BurnTier(PAGE, timedelta(hours=1), timedelta(minutes=5), 0.02),
    BurnTier(PAGE, timedelta(hours=6), timedelta(minutes=30), 0.05),
    BurnTier(TICKET, timedelta(days=1), timedelta(hours=2), 0.10),
    BurnTier(TICKET, timedelta(days=3), timedelta(hours=6), 0.10),
)

# time to exhaustion is computed from the burn of this window (the shortest long window)
EXHAUSTION_WINDOW = timedelta(hours=1)


def policy_windows(slo: SLO) -> tuple[timedelta, ...]:
    """Every window whose burn rate an SLO's alerting reads, shortest first."""
    windows = {w for tier in DEFAULT_TIERS for w in (tier.long, tier.short)}
    for policy in slo.alert_policies:
        for condition in policy.conditions:
            windows.add(condition.lookback_window)
            # an OpenSLO burnrate condition is multi-window too: short = long / 12
            windows.add(condition.lookback_window / 12)
    return tuple(sorted(windows))


def firing_tiers(
    burn_rates: Mapping[timedelta, float | None], period: timedelta
) -> list[BurnTier]:
    """The default tiers whose long and short windows both burn above their threshold."""
    fired = []
    for tier in DEFAULT_TIERS:
        threshold = tier.burn_for(period)
        long_burn, short_burn = burn_rates.get(tier.long), burn_rates.get(tier.short)
        if long_burn is None or short_burn is None:
            continue
        if long_burn > threshold and short_burn > threshold:
            fired.append(tier)
    return fired
