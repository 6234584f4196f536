"""What an alert transition says, as data: the Slack message and the terminal read the same words.

Pure: built from the SLO, the transition and the status, never from a client or a session.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot import policy
from bot.alerting import FIRING, Transition
from bot.budget import Status, budget_time
from bot.domain import SLO
from bot.periods import period_length

ICONS = {FIRING: "🔴", "resolved": "✅"}


@dataclass(frozen=True)
class AlertMessage:
    title: str  # "PAGE firing: checkout-availability (checkout)"
    status_line: str  # "Firing since 14:06 UTC", "Acknowledged by @ana at 14:09 UTC"
    fields: tuple[tuple[str, str], ...]  # ("Burn rate", "1000x over 5m, 16.7x over 1h"), ...
    meaning: str  # what it means, in plain words
    colour: str  # "danger" | "warning" | "good"


@dataclass(frozen=True)
class AlertFacts:
    """An alert as a message shows it: from a fresh transition, or from the stored alert."""

    key: str
    event: str  # firing | resolved
    at: datetime  # when it fired, or resolved
    fired_at: datetime | None = None
    burn_rates: Mapping[str, float | None] = field(default_factory=dict)
    reason: str = ""
    acknowledged_by: str | None = None
    acknowledged_at: datetime | None = None
    silenced_until: datetime | None = None
    silenced_by: str | None = None
    incidents: tuple[str, ...] = ()  # one line per incident tool it is open in, with its state there
    spent_ratio: float | None = None  # a resolved alert: the share of the budget its episode spent

    @classmethod
    def of(cls, transition: Transition) -> AlertFacts:
        return cls(
            transition.key,
            transition.event,
            transition.at,
            transition.fired_at,
            transition.burn_rates,
            transition.reason,
        )


def utc_time(at: datetime) -> str:
    return f"{at:%Y-%m-%d %H:%M} UTC"


def plain_user(user: str) -> str:
    return user


def span(value: timedelta) -> str:
    """2 h 05 min, 3 d 4 h, 52 s: the two largest units a person reads at a glance."""
    seconds = int(value.total_seconds())
    if seconds < 60:
        return f"{seconds} s"
    minutes, _ = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days} d {hours} h"
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min"


def percent(ratio: float | None, digits: int = 1) -> str:
    return "-" if ratio is None else f"{ratio * 100:.{digits}f} %"


def window_name(spec: str) -> str:
    """30d -> 30-day, 4w -> 4-week; other specs as written."""
    found = re.fullmatch(r"(\d+)([hdwMQY])", spec)
    if found is None:
        return spec
    units = {"h": "hour", "d": "day", "w": "week", "M": "month", "Q": "quarter", "Y": "year"}
    return f"{found.group(1)}-{units[found.group(2)]}"


def spent_text(ratio: float, budget: timedelta, window: str) -> str:
    """23.0 % of the 30-day budget (9.9 of 43.2 minutes); `budget` as full-outage time."""
    minutes = budget.total_seconds() / 60
    share = f"{ratio * 100:.1f} % of the {window_name(window)} budget"
    return f"{share} ({ratio * minutes:.1f} of {minutes:.1f} minutes)"


def label(key: str) -> str:
    names = {policy.PAGE: "PAGE", policy.TICKET: "TICKET", policy.NO_DATA: "NO DATA"}
    return names.get(key, key.upper().replace("-", " "))


def alert_message(
    slo: SLO,
    facts: AlertFacts | Transition,
    status: Status | None,
    *,
    time: Callable[[datetime], str] = utc_time,
    user: Callable[[str], str] = plain_user,
) -> AlertMessage:
    """The words of an alert message; `time` and `user` render instants and people."""
    if isinstance(facts, Transition):
        facts = AlertFacts.of(facts)
    firing = facts.event == FIRING
    title = f"{ICONS.get(facts.event, '')} {label(facts.key)} {facts.event}: {slo.name} ({slo.service})"
    if firing:
        status_line = f"Firing since {time(facts.fired_at or facts.at)}"
        if facts.acknowledged_by and facts.acknowledged_at:
            status_line += f". Acknowledged by {user(facts.acknowledged_by)} at {time(facts.acknowledged_at)}"
        if facts.silenced_until and facts.silenced_by:
            status_line += f". Silenced by {user(facts.silenced_by)} until {time(facts.silenced_until)}"
    else:
        status_line = f"Resolved at {time(facts.at)}"
        if facts.fired_at is not None:
            status_line += f", after {span(facts.at - facts.fired_at)}"
        if facts.acknowledged_by:
            status_line += f". Acknowledged by {user(facts.acknowledged_by)}"
    burns = ", ".join(f"{'-' if b is None else f'{b:.1f}x'} over {w}" for w, b in facts.burn_rates.items())
    # a calendar month's budget is that of its real length: 44.64 minutes in January at 99.9 %
    total_budget = budget_time(slo.objective.target_ratio, period_length(slo.window, facts.at))
    fields: list[tuple[str, str]] = [
        ("Objective", f"{slo.objective.target_ratio * 100:g} % over {slo.window.spec}"),
    ]
    if burns:
        fields.append(("Burn rate", burns))
    if status is not None:
        remaining = status.remaining_ratio
        left = (
            f"{percent(remaining)} of {span(total_budget)} of full outage"
            if remaining is not None
            else "no data"
        )
        fields.append(("Budget remaining", left))
        if status.exhaustion_at is not None and firing:
            until = status.exhaustion_at - status.evaluated_at
            fields.append(("Exhausted in", f"{span(until)} at the 1h burn rate"))
    if facts.reason:
        fields.append(("Why", facts.reason))
    if not firing and facts.spent_ratio is not None:
        fields.append(("Budget spent", spent_text(facts.spent_ratio, total_budget, slo.window.spec)))
    if facts.incidents:
        fields.append(("Incident", "\n".join(facts.incidents)))
    meaning = _meaning(facts.key, firing, slo, status)
    colour = ("danger" if facts.key == policy.PAGE else "warning") if firing else "good"
    return AlertMessage(title.strip(), status_line, tuple(fields), meaning, colour)


def _meaning(key: str, firing: bool, slo: SLO, status: Status | None) -> str:
    window = slo.window.spec
    if not firing:
        return "The burn is back under the threshold; nothing more is needed unless it returns."
    if key == policy.PAGE:
        if status is not None and status.exhaustion_at is not None:
            left = span(status.exhaustion_at - status.evaluated_at)
            return (
                f"At this pace the whole {window} error budget is gone in {left}. "
                "Users are hurting now: someone should look at it right away."
            )
        return "The error budget is burning fast. Users are hurting now: look at it right away."
    if key == policy.TICKET:
        return (
            f"The error budget is burning faster than the {window} window allows; it will run "
            "out before the window ends if nothing changes. Worth a look during working hours."
        )
    if key == policy.NO_DATA:
        return (
            "The source returned no data: it may be down, or the metric renamed. The budget is "
            "not updated meanwhile, and the gap counts neither as good nor as bad."
        )
    if key.startswith("budget-"):
        level = key.removeprefix("budget-")
        if level == "0":
            return f"The {window} error budget is spent: every further failure breaks the SLO."
        return f"Only {level} % or less of the {window} error budget is left."
    return "A condition of this SLO's alert policy holds."


def render_text(message: AlertMessage) -> str:
    """The message for a terminal: title, status line, fields, meaning."""
    width = max(len(name) for name, _ in message.fields)
    lines = [message.title, f"  {message.status_line}"]
    lines += [f"  {name.ljust(width)}  {value}" for name, value in message.fields]
    lines.append(f"  {message.meaning}")
    return "\n".join(lines)
