"""Alert policy: which alerts an SLO's burn rates, budget and data coverage call for.

Pure: window counts in, signals out. `bot.alerting` turns signals into alert transitions.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from bot.annotations import (
    BUDGET_ALERTS,
    MIN_BAD_EVENTS,
    NO_DATA_AFTER,
    parse_budget_alerts,
    parse_min_bad_events,
    parse_no_data_after,
)
from bot.budget import WindowCounts, burn_rate, sli_ratio
from bot.domain import SLO, BudgetingMethod, Op
from bot.durations import format_duration

PAGE = "page"
TICKET = "ticket"
NO_DATA = "no-data"
# What an AlertCondition's severity means here: a page (pages the incident tools, escalates, PagerDuty
# severity critical) or a ticket. Written in any case; anything else is a catalogue problem.
SEVERITIES: dict[str, str] = {
    **dict.fromkeys(("page", "critical", "high", "urgent", "emergency"), PAGE),
    **dict.fromkeys(("ticket", "warning", "medium", "low", "info"), TICKET),
}
DEFAULT_BUDGET_THRESHOLDS = (0.5, 0.25, 0.0)
# Hysteresis of the budget-remaining alerts: one that fired clears only once the remaining budget is
# back above its threshold by this much, so a budget wobbling around 50 % raises one alert, not many.
DEFAULT_BUDGET_MARGIN = 0.02
DEFAULT_NO_DATA_AFTER = timedelta(minutes=10)
# A burn rule fires only when its long window holds at least this many bad events (or bad
# slices): at 10 requests an hour, one failure is burn 100 on a 99.9 % SLO and must not page.
DEFAULT_MIN_BAD_EVENTS = 3.0
# time to exhaustion is computed from the burn of this window (the shortest long window)
EXHAUSTION_WINDOW = timedelta(hours=1)


def alert_severity(text: str) -> str:
    """`page` or `ticket` for a written severity (`critical` -> `page`). Raises ValueError."""
    severity = SEVERITIES.get(text.strip().lower())
    if severity is None:
        pages = ", ".join(k for k, v in SEVERITIES.items() if v == PAGE)
        tickets = ", ".join(k for k, v in SEVERITIES.items() if v == TICKET)
        raise ValueError(f"unknown severity {text!r}: a page is one of {pages}; a ticket one of {tickets}")
    return severity


@dataclass(frozen=True)
class BurnTier:
    """A default tier: fires when the burn over both `long` and `short` exceeds its threshold."""

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


@dataclass(frozen=True)
class BurnRule:
    """One multi-window rule: `op` holds for the burn of both windows (short = long / 12)."""

    severity: str
    long: timedelta
    short: timedelta
    threshold: float
    op: Op = Op.GT
    alert_after: timedelta = timedelta(0)


@dataclass(frozen=True)
class Policy:
    rules: tuple[BurnRule, ...]
    budget_thresholds: tuple[float, ...] = DEFAULT_BUDGET_THRESHOLDS
    budget_margin: float = DEFAULT_BUDGET_MARGIN
    no_data_after: timedelta = DEFAULT_NO_DATA_AFTER
    min_bad_events: float = DEFAULT_MIN_BAD_EVENTS

    @functools.cached_property  # (read for every evaluation of the SLO; a policy never changes)
    def burn_windows(self) -> tuple[timedelta, ...]:
        """The windows whose burn rates the rules read: the `burn_rates` of SPEC.md's JSON."""
        return tuple(sorted({w for r in self.rules for w in (r.long, r.short)}))

    @functools.cached_property  # (read for every evaluation of the SLO; a policy never changes)
    def windows(self) -> tuple[timedelta, ...]:
        """Every window an evaluation sums: burn windows, the no-data window, the exhaustion one."""
        return tuple(sorted({*self.burn_windows, self.no_data_after, EXHAUSTION_WINDOW}))

    @functools.cached_property  # (read for every evaluation of the SLO; a policy never changes)
    def severities(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(r.severity for r in self.rules))


def policy_for(slo: SLO, period: timedelta) -> Policy:
    """The SLO's OpenSLO burn-rate conditions if it has any, else the default tiers for `period`.

    Annotations tune the rest: `slo-bot/budget-alerts` ("50,25,0" in percent, "" for none),
    `slo-bot/no-data-after` (a duration), `slo-bot/min-bad-events` (a number).
    """
    rules = [
        BurnRule(
            severity=alert_severity(c.severity),  # the catalogue refuses what this refuses
            long=c.lookback_window,
            short=c.lookback_window / 12,
            threshold=c.threshold,
            op=c.op,
            alert_after=c.alert_after,
        )
        for p in slo.alert_policies
        for c in p.conditions
    ]
    if not rules:
        rules = [BurnRule(t.severity, t.long, t.short, t.burn_for(period)) for t in DEFAULT_TIERS]
    # The catalogue refuses an SLO whose annotations these parsers refuse, so they do not raise here.
    notes = slo.annotations
    budget_text = notes.get(BUDGET_ALERTS)
    no_data_text = notes.get(NO_DATA_AFTER)
    min_bad_text = notes.get(MIN_BAD_EVENTS)
    return Policy(
        rules=tuple(rules),
        budget_thresholds=(
            DEFAULT_BUDGET_THRESHOLDS if budget_text is None else parse_budget_alerts(budget_text)
        ),
        no_data_after=DEFAULT_NO_DATA_AFTER if no_data_text is None else parse_no_data_after(no_data_text),
        min_bad_events=DEFAULT_MIN_BAD_EVENTS if min_bad_text is None else parse_min_bad_events(min_bad_text),
    )


@dataclass(frozen=True)
class Signal:
    """What the policy calls for on one alert key at one evaluation.

    `active` None means the data cannot tell (a window without data): the alert keeps its state.
    `hold` (with `active` False) means not enough to fire, but not clear enough to resolve one that
    already fired: the hysteresis band of the budget-remaining alerts.
    """

    key: str
    active: bool | None
    burn_rates: Mapping[str, float | None]
    reason: str
    alert_after: timedelta = timedelta(0)
    hold: bool = False


def _bad(counts: WindowCounts, method: BudgetingMethod) -> float:
    if method is BudgetingMethod.OCCURRENCES:
        return max(0.0, counts.total - counts.good)
    if method is BudgetingMethod.TIMESLICES:
        return max(0.0, counts.slices - counts.good_slices)
    return max(0.0, counts.slices - counts.ratio_sum)


def signals(
    policy: Policy,
    counts: Mapping[timedelta, WindowCounts],
    *,
    target_ratio: float,
    method: BudgetingMethod,
    remaining_ratio: float | None,
) -> list[Signal]:
    """Evaluate every rule, the budget thresholds and data coverage."""
    burns = {w: burn_rate(sli_ratio(c, method), target_ratio) for w, c in counts.items()}
    out: list[Signal] = []
    for severity in policy.severities:
        out.append(_severity_signal(policy, severity, counts, burns, method))
    page = next((s for s in out if s.key == PAGE), None)
    if page is not None and page.active:
        # a firing page suppresses the ticket: it neither fires nor resolves meanwhile
        out = [s if s.key != TICKET else Signal(TICKET, None, s.burn_rates, "page firing") for s in out]
    for threshold in policy.budget_thresholds:
        key = f"budget-{round(threshold * 100)}"
        active = None if remaining_ratio is None else remaining_ratio <= threshold
        hold = remaining_ratio is not None and remaining_ratio <= threshold + policy.budget_margin
        reason = f"budget remaining at or below {threshold * 100:g} %"
        out.append(Signal(key, active, {}, reason, hold=hold and not active))
    recent = counts.get(policy.no_data_after)
    if recent is not None:
        # time in a maintenance window is expected to be quiet (its events are left out)
        silent = recent.covered <= timedelta(0) and recent.excluded < recent.span
        out.append(Signal(NO_DATA, silent, {}, f"no data for {format_duration(policy.no_data_after)}"))
    return out


def _severity_signal(
    policy: Policy,
    severity: str,
    counts: Mapping[timedelta, WindowCounts],
    burns: Mapping[timedelta, float | None],
    method: BudgetingMethod,
) -> Signal:
    rules = [r for r in policy.rules if r.severity == severity]
    unknown = False
    best: BurnRule | None = None
    for rule in rules:
        long_burn, short_burn = burns.get(rule.long), burns.get(rule.short)
        if long_burn is None or short_burn is None:
            unknown = True
            continue
        enough = _bad(counts[rule.long], method) >= policy.min_bad_events
        if enough and rule.op.holds(long_burn, rule.threshold) and rule.op.holds(short_burn, rule.threshold):
            best = best or rule
    shown = best or rules[0]
    rates = {format_duration(w): burns.get(w) for w in (shown.long, shown.short)}
    if best is not None:
        reason = (
            f"burn {_fmt(burns[best.long])}x over {format_duration(best.long)} and "
            f"{_fmt(burns[best.short])}x over {format_duration(best.short)} "
            f"(threshold {best.threshold:g}x)"
        )
        return Signal(severity, True, rates, reason, best.alert_after)
    if unknown and all(burns.get(r.long) is None or burns.get(r.short) is None for r in rules):
        return Signal(severity, None, rates, "no data in its windows")
    return Signal(severity, False, rates, "burn rates below every threshold")


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"
