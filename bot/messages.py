"""What an alert transition says, as data: the Slack message and the terminal read the same words.

Pure: built from the SLO, the transition and the status, never from a client or a session.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from bot import policy
from bot.alerting import FIRING, Transition
from bot.budget import Status, budget_time
from bot.domain import SLO

ICONS = {FIRING: "🔴", "resolved": "✅"}


@dataclass(frozen=True)
class AlertMessage:
    title: str  # "PAGE firing: checkout-availability (checkout)"
    status_line: str  # "Firing since 14:06 UTC"
    fields: tuple[tuple[str, str], ...]  # ("Burn rate", "1000x over 5m, 16.7x over 1h"), ...
    meaning: str  # what it means, in plain words
    colour: str  # "danger" | "warning" | "good"


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


def alert_message(slo: SLO, transition: Transition, status: Status | None) -> AlertMessage:
    key, firing = transition.key, transition.event == FIRING
    label = {policy.PAGE: "PAGE", policy.TICKET: "TICKET", policy.NO_DATA: "NO DATA"}.get(
        key, key.upper().replace("-", " ")
    )
    title = f"{ICONS.get(transition.event, '')} {label} {transition.event}: {slo.name} ({slo.service})"
    when = f"{transition.at:%Y-%m-%d %H:%M} UTC"
    status_line = f"Firing since {when}" if firing else f"Resolved at {when}"
    if not firing and transition.fired_at is not None:
        status_line += f", after {span(transition.at - transition.fired_at)}"
    burns = ", ".join(
        f"{'-' if b is None else f'{b:.1f}x'} over {w}" for w, b in transition.burn_rates.items()
    )
    period = slo.window.duration
    total_budget = budget_time(slo.objective.target_ratio, period)
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
        if status.exhaustion_at is not None:
            until = status.exhaustion_at - status.evaluated_at
            fields.append(("Exhausted in", f"{span(until)} at the 1h burn rate"))
    fields.append(("Why", transition.reason))
    meaning = _meaning(key, firing, slo, status)
    colour = ("danger" if key == policy.PAGE else "warning") if firing else "good"
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
