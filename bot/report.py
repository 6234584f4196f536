"""Status as the terminal shows it: the JSON objects of SPEC.md and a plain-text table."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from bot import budget, groups
from bot.alerting import Transition
from bot.budget import Outlook, Status
from bot.domain import SLO
from bot.durations import format_duration
from bot.messages import spent_since_text, utc_time
from bot.periods import period_bounds

if TYPE_CHECKING:  # replay's machinery (sources, evaluation, metrics) is not for `status`
    from bot.replay import Episode


def iso(at: datetime | None) -> str | None:
    if at is None:
        return None
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Window:
    """A maintenance window of an SLO as `status` shows it: under way (`now`) or the next one."""

    name: str
    description: str
    start: datetime
    end: datetime
    now: bool


@dataclass(frozen=True)
class Row:
    """One SLO's line of output, from a fresh evaluation or from a stored snapshot."""

    slo: str
    service: str
    objective: float | None
    window: str | None
    evaluated_at: datetime | None
    sli: float | None
    good: float
    total: float
    consumed_ratio: float | None
    remaining_ratio: float | None
    burn_rates: Mapping[str, float | None]
    exhaustion_at: datetime | None
    state: str
    alerts: Sequence[Mapping[str, Any]] = ()
    error: str | None = None
    warnings: Sequence[str] = field(default=())
    outlook: Outlook | None = None  # when the budget runs out, or since when it is spent
    maintenance: Sequence[Window] = ()  # its maintenance windows under way now, then the next ones


def row_from_status(
    name: str,
    service: str,
    slo: SLO | None,
    status: Status | None,
    error: str | None = None,
    alerts: Sequence[Mapping[str, Any]] = (),
) -> Row:
    if status is None:
        return Row(
            name,
            service,
            slo.objective.target_ratio if slo else None,
            slo.window.spec if slo else None,
            None,
            None,
            0.0,
            0.0,
            None,
            None,
            {},
            None,
            "no_data",
            error=error,
        )
    return Row(
        slo=name,
        service=service,
        objective=slo.objective.target_ratio if slo else None,
        window=slo.window.spec if slo else None,
        evaluated_at=status.evaluated_at,
        sli=status.sli,
        good=status.good,
        total=status.total,
        consumed_ratio=status.consumed_ratio,
        remaining_ratio=status.remaining_ratio,
        burn_rates={format_duration(w): b for w, b in status.burn_rates.items()},
        exhaustion_at=status.exhaustion_at,
        state=status.state,
        error=error,
        warnings=status.warnings,
        alerts=alerts,
        outlook=None if slo is None else pure_outlook(slo, status),
    )


def pure_outlook(slo: SLO, status: Status) -> Outlook:
    """The budget's end from the status alone (its 6h burn, if its policy has that window): what
    `check` can say without the store; `bot.exhaustion.outlook` adds since when a spent one is spent."""
    start, end = period_bounds(slo.window, status.evaluated_at)
    rolling = slo.window.is_rolling
    paces = budget.paces(
        status,
        status.burn_rates.get(budget.PACE_WINDOW),
        period=slo.window.duration if rolling else end - start,
        period_end=None if rolling else end,
    )
    return Outlook(status.remaining_ratio, paces, None if rolling else end)


def _round(value: float | None, digits: int = 6) -> float | None:
    return None if value is None else round(value, digits)


def to_json(row: Row) -> dict[str, Any]:
    data: dict[str, Any] = {
        "slo": row.slo,
        "service": row.service,
        "objective": row.objective,
        "window": row.window,
        "evaluated_at": iso(row.evaluated_at),
        "sli": _round(row.sli, 8),
        "good": row.good,
        "total": row.total,
        "budget": {
            "consumed": _round(row.consumed_ratio),
            "remaining": _round(row.remaining_ratio),
        },
        "burn_rates": {w: _round(b, 4) for w, b in row.burn_rates.items()},
        "exhaustion_at": iso(row.exhaustion_at),
        "alerts": list(row.alerts),
        "state": row.state,
    }
    if row.error:
        data["error"] = row.error
    if row.warnings:
        data["warnings"] = list(row.warnings)
    if row.maintenance:
        data["maintenance"] = [
            {
                "name": w.name,
                "description": w.description,
                "start": iso(w.start),
                "end": iso(w.end),
                "now": w.now,
            }
            for w in row.maintenance
        ]
    return data


def render_json(rows: Sequence[Row]) -> str:
    return json.dumps([to_json(r) for r in rows], indent=2)


def _pct(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value * 100:.{digits}f}%"


def _burn(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


TABLE_BURNS = ("5m", "1h", "6h", "1d", "3d")


def fold_groups(rows: Sequence[Row], labels: Mapping[str, tuple[str, ...]]) -> list[Row]:
    """The members of each grouped SLO (`labels`: its group-by, by definition name) as one row in the
    place of the first, holding the worst member's figures under the group's name and a summary:
    `checkout-latency (3 routes: worst /pay -100 % left, /cart 67 % left)`."""
    members: dict[str, list[Row]] = {}
    for row in rows:
        definition = groups.definition_of(row.slo)
        if definition in labels and definition != row.slo:
            members.setdefault(definition, []).append(row)
    out: list[Row] = []
    for row in rows:
        definition = groups.definition_of(row.slo)
        if definition not in labels or definition == row.slo:
            out.append(row)
            continue
        found = members.pop(definition, None)
        if found is None:
            continue
        ranked = sorted(found, key=lambda r: (r.remaining_ratio is None, r.remaining_ratio or 0.0, r.slo))
        worst = ranked[0]
        text = groups.summary(labels[definition], [(r.slo, r.remaining_ratio) for r in found])
        errors = [r.error for r in found if r.error]
        out.append(
            replace(worst, slo=f"{definition} ({text})", error=errors[0] if errors else None, warnings=())
        )
    return out


def _runs_out(outlook: Outlook | None) -> str:
    """`2026-12-03 14:00 | 2026-12-01 02:00` (UTC): when the budget is gone at the window's average
    burn and at the 6h burn; `never` at a burn of 0 (or, calendar, not before the reset); `spent`."""
    if outlook is None or outlook.remaining_ratio is None:
        return "-"
    if outlook.spent:
        return "spent"

    def one(at: datetime | None, burn: float | None) -> str:
        if burn is None:
            return "-"
        return f"{at:%Y-%m-%d %H:%M}" if at is not None else "never"

    return " | ".join(one(p.runs_out_at, p.burn) for p in outlook.paces)


def render_table(rows: Sequence[Row]) -> str:
    header = [
        "SLO",
        "SERVICE",
        "OBJECTIVE",
        "SLI",
        "BUDGET LEFT",
        *(f"BURN {w}" for w in TABLE_BURNS),
        "STATE",
        "RUNS OUT (AVG | 6H BURN)",
    ]
    lines = [header]
    for r in rows:
        exhaustion = _runs_out(r.outlook)
        lines.append(
            [
                r.slo,
                r.service,
                _pct(r.objective, 3 if r.objective and r.objective > 0.99 else 1),
                _pct(r.sli, 4),
                _pct(r.remaining_ratio, 1),
                *(_burn(r.burn_rates.get(w)) for w in TABLE_BURNS),
                r.state + (" (!)" if r.error else ""),
                exhaustion,
            ]
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(line)).rstrip() for line in lines]
    for r in rows:
        if r.outlook is not None and r.outlook.spent:
            out.append(f"budget: {r.slo}: {spent_since_text(r.outlook)}")
    for r in rows:
        for w in r.maintenance:
            when = "in maintenance now" if w.now else "next maintenance"
            why = f" ({w.description})" if w.description else ""
            out.append(f"{when}: {r.slo}: {w.name}{why} {utc_time(w.start)} to {utc_time(w.end)}")
    for r in rows:
        if r.error:
            out.append(f"(!) {r.slo}: {r.error}")
        for warning in r.warnings:
            out.append(f"warning: {r.slo}: {warning}")
    return "\n".join(out)


def transition_json(
    t: Transition,
    spent: Mapping[tuple[str, datetime], float | None] | None = None,
    breach: int | None = None,
) -> dict[str, Any]:
    """The `replay --json` line of SPEC.md; a resolution also says what its episode cost
    (`budget_spent`, a share of the period's budget), from `spent` keyed by (alert, resolved at);
    `breach`: the number (within the replay) of the breach the signal belongs to."""
    line: dict[str, Any] = {
        "at": iso(t.at),
        "slo": t.slo,
        "severity": t.key,
        "event": t.event,
        "burn_rates": {w: _round(b, 4) for w, b in t.burn_rates.items()},
    }
    if spent is not None and (t.key, t.at) in spent:
        line["budget_spent"] = _round(spent[t.key, t.at])
    if breach is not None:
        line["breach"] = breach
    return line


def transition_line(t: Transition, breach: int | None = None) -> str:
    burns = " ".join(f"{w}={_burn(b)}" for w, b in t.burn_rates.items())
    number = f"  #{breach}" if breach is not None else ""
    return (
        f"{t.at:%Y-%m-%d %H:%M}Z  {t.slo}{number}  {t.key}  {t.event.upper()}  {burns}  {t.reason}".rstrip()
    )


def _span(value: timedelta | None) -> str:
    if value is None:
        return "-"
    minutes = int(value.total_seconds() // 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days}d{hours}h"
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m"


def render_episodes(episodes: Sequence[Episode]) -> str:
    """The breaches of a replay: one line each (time to acknowledge is a person's: not replayed)."""
    if not episodes:
        return "no breach opened"
    lines = [["SLO", "BREACH", "HIGHEST", "OPENED", "ENDED", "DURATION", "DETECTED AFTER", "BUDGET SPENT"]]
    for e in episodes:
        duration = (e.resolved_at - e.fired_at) if e.resolved_at else None
        lines.append(
            [
                e.slo,
                f"#{e.number}",
                e.key,
                f"{e.fired_at:%Y-%m-%d %H:%M}Z",
                f"{e.resolved_at:%Y-%m-%d %H:%M}Z" if e.resolved_at else "(still open)",
                _span(duration),
                _span(e.detection_delay),
                _pct(e.budget_spent_ratio, 1),
            ]
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    return "\n".join(
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(line)).rstrip() for line in lines
    )
