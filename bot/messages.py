"""What an alert transition says, as data: the Slack message and the terminal read the same words.

Pure: built from the SLO, the transition and the status, never from a client or a session.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot import policy
from bot.breaches import BUDGET, BURN, EXHAUSTED, NO_DATA_KIND
from bot.budget import Outlook, Status, budget_time
from bot.domain import SLO
from bot.durations import format_duration
from bot.periods import period_length


@dataclass(frozen=True)
class AlertMessage:
    title: str  # "PAGE firing: checkout-availability (checkout)"
    status_line: str  # "Firing since 14:06 UTC", "Acknowledged by @ana at 14:09 UTC"
    fields: tuple[tuple[str, str], ...]  # ("Burn rate", "1000x over 5m, 16.7x over 1h"), ...
    meaning: str  # what it means, in plain words
    colour: str  # "danger" | "warning" | "good"


@dataclass(frozen=True)
class SignalLine:
    """A signal that joined a breach: when it fired and, once clear, when it cleared."""

    key: str
    fired_at: datetime
    resolved_at: datetime | None = None


@dataclass(frozen=True)
class BreachFacts:
    """A breach as its message shows it, read from the store (or built by `replay`)."""

    number: int
    kind: str  # burn | no-data | budget
    severity: str  # the headline: the most severe signal firing now (resolved: the peak)
    firing: bool
    opened_at: datetime
    resolved_at: datetime | None = None
    clear_since: datetime | None = None
    signals: tuple[SignalLine, ...] = ()  # burn or no-data signals that joined, in firing order
    notices: tuple[SignalLine, ...] = ()  # budget thresholds crossed and noted on this breach
    burn_rates: Mapping[str, float | None] = field(default_factory=dict)
    reason: str = ""
    acknowledged_by: str | None = None
    acknowledged_at: datetime | None = None
    silenced_until: datetime | None = None
    silenced_by: str | None = None
    incidents: tuple[str, ...] = ()  # one line per incident tool it is open in, with its state there
    spent_ratio: float | None = None  # resolved: the share of the budget it spent
    budget_back_at: datetime | None = None  # budget exhausted: when it is expected back
    outlook: Outlook | None = None  # open: when the budget runs out, or since when it is spent
    refunded_by: str | None = None  # resolved and marked a false positive: by whom, and why
    refund_reason: str = ""


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


def budget_level(key: str) -> str:
    """`budget-25` -> `25 %`."""
    return key.removeprefix("budget-") + " %"


def headline(kind: str, severity: str) -> str:
    """PAGE, TICKET, NO DATA, BUDGET EXHAUSTED, BUDGET BELOW 25 %."""
    if kind == BUDGET:
        level = severity.removeprefix("budget-")
        return "BUDGET EXHAUSTED" if severity == EXHAUSTED else f"BUDGET BELOW {level} %"
    return label(severity)


def breach_message(
    slo: SLO,
    facts: BreachFacts,
    status: Status | None,
    *,
    time: Callable[[datetime], str] = utc_time,
    user: Callable[[str], str] = plain_user,
) -> AlertMessage:
    """The words of a breach's one message; `time` and `user` render instants and people."""
    name = f"{slo.name} ({slo.service})"
    head = headline(facts.kind, facts.severity)
    if facts.kind == BUDGET:
        head = f"{head} (budget notice)"
    if facts.firing:
        icon = {BURN: "🔴" if facts.severity == policy.PAGE else "🟠", NO_DATA_KIND: "⚪"}.get(
            facts.kind, "📉"
        )
        title = f"{icon} {head}: {name} · breach #{facts.number}"
        status_line = f"Open since {time(facts.opened_at)}"
        if facts.clear_since is not None:
            status_line += (
                f". Every signal is clear since {time(facts.clear_since)}: "
                "it ends at the next evaluation if they stay so"
            )
        if facts.acknowledged_by and facts.acknowledged_at:
            status_line += f". Acknowledged by {user(facts.acknowledged_by)} at {time(facts.acknowledged_at)}"
        if facts.silenced_until and facts.silenced_by:
            status_line += f". Silenced by {user(facts.silenced_by)} until {time(facts.silenced_until)}"
    else:
        title = f"✅ Resolved {head}: {name} · breach #{facts.number}"
        end = facts.resolved_at or facts.opened_at
        status_line = f"Resolved at {time(end)}, after {span(end - facts.opened_at)}"
        if facts.acknowledged_by:
            status_line += f". Acknowledged by {user(facts.acknowledged_by)}"
    at = facts.resolved_at or facts.opened_at
    # a calendar month's budget is that of its real length: 44.64 minutes in January at 99.9 %
    total_budget = budget_time(slo.objective.target_ratio, period_length(slo.window, at))
    fields: list[tuple[str, str]] = [
        ("Objective", f"{slo.objective.target_ratio * 100:g} % over {slo.window.spec}"),
    ]
    if facts.signals and facts.kind != BUDGET:
        fields.append(("Signals", " · ".join(_signal_text(s, time) for s in reversed(facts.signals))))
    burns = ", ".join(f"{'-' if b is None else f'{b:.1f}x'} over {w}" for w, b in facts.burn_rates.items())
    if burns and facts.kind == BURN and facts.firing:  # resolved: what it spent says more
        fields.append(("Burn rate", burns))
    if status is not None:
        remaining = status.remaining_ratio
        left = (
            f"{percent(remaining)} of {span(total_budget)} of full outage"
            if remaining is not None
            else "no data"
        )
        outlook = facts.outlook if facts.firing else None
        if outlook is not None and outlook.spent:
            left += f"; {spent_since_text(outlook, time, back=False)}"  # "Budget back" says when
        fields.append(("Budget remaining", left))
        if outlook is not None and not outlook.spent and outlook.remaining_ratio is not None:
            fields.append(("Budget runs out", runs_out_text(outlook, slo.window.spec, time)))
    if facts.notices:
        fields.append(("Budget notices", " · ".join(_notice_text(n, time) for n in facts.notices)))
    if facts.reason and facts.kind != BUDGET:
        fields.append(("Why it opened", facts.reason))
    if facts.budget_back_at is not None and facts.firing:  # known only while the budget is spent
        fields.append(("Budget back", f"{time(facts.budget_back_at)}, if nothing more fails meanwhile"))
    if not facts.firing and facts.spent_ratio is not None:
        fields.append(("Budget spent", spent_text(facts.spent_ratio, total_budget, slo.window.spec)))
    if facts.refunded_by is not None:
        # typed in Slack: shown, never acted on (a typed @channel arrives as <!channel>)
        typed = facts.refund_reason.replace("<", "‹").replace(">", "›")
        why = f": {typed}" if typed else ""
        fields.append(
            ("Refunded", f"a false positive, by {user(facts.refunded_by)}{why}; its budget is given back")
        )
    if facts.incidents:
        fields.append(("Incident", "\n".join(facts.incidents)))
    meaning = _meaning(facts, slo, status, time)
    colour = "good"
    if facts.firing:
        colour = "danger" if facts.severity in (policy.PAGE, EXHAUSTED) else "warning"
    return AlertMessage(title.strip(), status_line, tuple(fields), meaning, colour)


def _signal_text(signal: SignalLine, time: Callable[[datetime], str]) -> str:
    text = f"{label(signal.key)} since {time(signal.fired_at)}"
    return text if signal.resolved_at is None else f"{text}, clear at {time(signal.resolved_at)}"


def _notice_text(notice: SignalLine, time: Callable[[datetime], str]) -> str:
    if notice.key == EXHAUSTED:
        return f"exhausted at {time(notice.fired_at)}"
    return f"below {budget_level(notice.key)} at {time(notice.fired_at)}"


def _pace_name(window: timedelta | None, spec: str) -> str:
    if window is None:
        return f"the {window_name(spec)} average burn"
    return f"the {format_duration(window)} burn"


def runs_out_text(outlook: Outlook, spec: str, time: Callable[[datetime], str] = utc_time) -> str:
    """2026-12-03 14:00 UTC at the 30-day average burn (0.80x) · 2026-12-01 02:00 UTC at the 6h burn
    (3.10x): when the budget left is gone if each burn holds. `spec`: the SLO's window as written."""
    parts = []
    for pace in outlook.paces:
        name = _pace_name(pace.window, spec)
        if pace.burn is None:
            parts.append(f"no data for {name}")
            continue
        at = f"{name} ({pace.burn:.2f}x)"
        if pace.runs_out_at is not None:
            parts.append(f"{time(pace.runs_out_at)} at {at}")
        elif outlook.period_end is not None and pace.burn > 0:
            parts.append(f"not before the period resets ({time(outlook.period_end)}) at {at}")
        else:
            parts.append(f"not at {at}")
    return " · ".join(parts)


def spent_since_text(
    outlook: Outlook, time: Callable[[datetime], str] = utc_time, *, back: bool = True
) -> str:
    """exhausted since 2026-11-29 08:14 UTC (or earlier), back at ...: a spent budget's dates."""
    if outlook.spent_since is None:
        text = "exhausted"
    else:
        text = f"exhausted since {time(outlook.spent_since)}"
        text += "" if outlook.spent_since_exact else " or earlier"
    if outlook.back_at is None or not back:
        return text
    if outlook.period_end is not None:
        return f"{text}, back at {time(outlook.back_at)} when the period resets"
    return f"{text}, back at {time(outlook.back_at)} if nothing more fails"


def exhausted_meaning(slo: SLO, back: datetime | None, time: Callable[[datetime], str] = utc_time) -> str:
    """What a spent budget means for the team, and when it comes back."""
    window = window_name(slo.window.spec)
    text = (
        f"The {window} error budget is spent: the SLO is broken for this window, and every further "
        "failure deepens the breach. Error-budget policy: freeze risky changes (releases, migrations, "
        "experiments) and put reliability work first until the budget is back"
    )
    if back is not None:
        text += f", expected {time(back)} if nothing more fails"
    return text + "."


def _meaning(facts: BreachFacts, slo: SLO, status: Status | None, time: Callable[[datetime], str]) -> str:
    window = slo.window.spec
    if not facts.firing:
        if facts.kind == BUDGET:
            return "The budget is back above the thresholds it had crossed."
        if facts.kind == NO_DATA_KIND:
            return "Data flows again; the budget is updated from here on."
        return "Every burn rate is back under its threshold; nothing more is needed unless it returns."
    if facts.kind == BUDGET:
        if facts.severity == EXHAUSTED:
            return exhausted_meaning(slo, facts.budget_back_at, time)
        return (
            f"Only {budget_level(facts.severity)} or less of the {window} error budget is left. No burn "
            "alert is open: this is a notice for whoever owns the error-budget policy."
        )
    if facts.kind == NO_DATA_KIND:
        return (
            "The source returned no data: it may be down, or the metric renamed. The SLO is blind: the "
            "budget is not updated meanwhile, and the gap counts neither as good nor as bad."
        )
    if facts.severity == policy.PAGE:
        if status is not None and status.exhaustion_at is not None:
            left = span(status.exhaustion_at - status.evaluated_at)
            return (
                f"At the last hour's burn the {window} error budget left is gone in {left}. "
                "Users are hurting now: someone should look at it right away."
            )
        return "The error budget is burning fast. Users are hurting now: look at it right away."
    return (
        f"The error budget is burning faster than the {window} window allows; it will run "
        "out before the window ends if nothing changes. Worth a look during working hours."
    )


def render_text(message: AlertMessage) -> str:
    """The message for a terminal: title, status line, fields, meaning."""
    width = max(len(name) for name, _ in message.fields)
    lines = [message.title, f"  {message.status_line}"]
    lines += [f"  {name.ljust(width)}  {value}" for name, value in message.fields]
    lines.append(f"  {message.meaning}")
    return "\n".join(lines)
