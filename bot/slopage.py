"""What an SLO's page shows, read from the store over a caller's session: its numbers as `/slo show`
reads them, its burn-down chart, its breaches in the window and the audit trail of who did what.
Rendering is bot/slopage_html.py's."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from bot import episodes, exhaustion
from bot.domain import SLO
from bot.messages import headline, percent, runs_out_text, span, spent_since_text, utc_time, window_name
from bot.slack.state import detail
from bot.store import repo
from bot.store.models import BreachEventRecord, BreachRecord, SilenceRecord, SubscriptionRecord

log = logging.getLogger(__name__)
MAX_AUDIT = 200  # the newest; a page longer than that is read by no one


@dataclass(frozen=True)
class BreachRow:
    number: int
    what: str  # PAGE, TICKET, BUDGET EXHAUSTED ...
    started: str
    lasted: str  # "2 h 05 min" or "still open (2 h 05 min so far)"
    acknowledged: str  # "after 4 min" or "not acknowledged"
    spent: str  # "23.0 % of the budget (9.9 of 43.2 minutes)" or "unknown"


@dataclass(frozen=True)
class AuditRow:
    at: datetime
    who: str  # a Slack user ID as stored, or "slo-bot"
    what: str


@dataclass(frozen=True)
class Chart:
    png: bytes
    alt_text: str


@dataclass(frozen=True)
class Page:
    name: str
    service: str
    numbers: tuple[tuple[str, str], ...]  # (label, value), in reading order
    burn_rates: tuple[tuple[str, str], ...]  # (window, "2.40x")
    state: str
    window: str  # "30-day"
    breaches: tuple[BreachRow, ...]
    audit: tuple[AuditRow, ...]
    chart: Chart | None
    chart_error: str = ""  # why there is no chart, when there is none


def load_page(session: Session, name: str, now: datetime) -> Page | None:
    """The page of the SLO called `name`; None if there is no such SLO."""
    found = detail(session, name, now)
    if found is None or found.record.id is None:
        return None
    record, slo, snap, slo_id = found.record, found.slo, found.snapshot, found.record.id
    numbers: list[tuple[str, str]] = []
    burns: list[tuple[str, str]] = []
    state = "not evaluated yet"
    if slo is not None:
        numbers.append(("Objective", f"{slo.objective.target_ratio * 100:g} % over {slo.window.spec}"))
    if snap is not None:
        numbers.append(("SLI", "no data" if snap.sli is None else f"{snap.sli * 100:.4f} %"))
        numbers.append(("Budget left", percent(snap.remaining_ratio)))
        burns = [(w, "-" if v is None else f"{v:.2f}x") for w, v in json.loads(snap.burn_rates).items()]
        state = snap.state
        status = repo.status_of(snap)
        if slo is not None and status is not None:
            outlook = exhaustion.outlook(session, slo, slo_id, status)
            if outlook.spent:
                numbers.append(("Budget", spent_since_text(outlook)))
            elif outlook.remaining_ratio is not None:
                numbers.append(("Budget runs out", runs_out_text(outlook, slo.window.spec)))
        evaluated = repo.utc(snap.evaluated_at)
        if evaluated is not None:
            numbers.append(("Evaluated", utc_time(evaluated)))
    failing_since = repo.utc(record.failing_since)
    if failing_since is not None:
        numbers.append(("Evaluation failing since", f"{utc_time(failing_since)}: {record.failure or ''}"))
    elif snap is not None and snap.error:  # evaluated, with a word from the source
        numbers.append(("Source said", snap.error))
    rows: list[BreachRow] = []
    chart: Chart | None = None
    chart_error = "the SLO's definition does not build here" if slo is None else ""
    if slo is not None:
        for e in episodes.episodes_in_window(session, slo, slo_id, now):
            lasted = span((e.end or now) - e.fired_at)
            acked = e.time_to_acknowledge
            rows.append(
                BreachRow(
                    number=e.number,
                    what=headline(e.kind, e.key),
                    started=utc_time(e.fired_at),
                    lasted=lasted if e.end else f"still open ({lasted} so far)",
                    acknowledged="not acknowledged"
                    if acked is None
                    else f"after {span(max(acked, timedelta(0)))}",
                    spent="unknown (no events)" if e.cost_ratio is None else _spent(e),
                )
            )
        chart, chart_error = _chart(session, slo, slo_id, now)
    return Page(
        name=record.name,
        service=record.service,
        numbers=tuple(numbers),
        burn_rates=tuple(burns),
        state=state,
        window=window_name(slo.window.spec) if slo is not None else "",
        breaches=tuple(rows),
        audit=tuple(audit_trail(session, slo_id, record.service)),
        chart=chart,
        chart_error=chart_error,
    )


def _spent(e: episodes.Episode) -> str:
    assert e.cost_ratio is not None and e.spent is not None
    return f"{e.cost_ratio * 100:.1f} % of the budget ({span(e.spent)} of full outage)"


def _chart(session: Session, slo: SLO, slo_id: int, now: datetime) -> tuple[Chart | None, str]:
    # matplotlib is loaded with the first chart drawn, not with the page module
    from bot import charts
    from bot.burndown import load_burn_down

    try:
        drawn = charts.render(load_burn_down(session, slo, slo_id, now))
    except Exception:  # the numbers are still worth showing
        log.exception("drawing the chart of SLO %d failed", slo_id)
        return None, "the chart could not be drawn (see slo-bot's log)"
    return Chart(png=drawn.png, alt_text=drawn.alt_text), ""


def audit_trail(session: Session, slo_id: int, service: str) -> list[AuditRow]:
    """Who acknowledged, silenced, escalated ... the SLO's breaches, silenced the SLO and subscribed
    channels to its service, and when; newest first."""
    rows: list[AuditRow] = []
    events = session.exec(
        select(BreachEventRecord, BreachRecord.kind, BreachRecord.peak)
        .join(BreachRecord, col(BreachRecord.id) == BreachEventRecord.breach_id)
        .where(BreachRecord.slo_id == slo_id)
        .order_by(col(BreachEventRecord.at).desc())
        .limit(MAX_AUDIT)
    )
    for event, kind, peak in events:
        what = f"{event.event} breach #{event.breach_id} ({headline(kind, peak)})"
        rows.append(AuditRow(_at(event.at), event.actor or "slo-bot", f"{what} {event.detail}".strip()))
    silences = session.exec(select(SilenceRecord).where(SilenceRecord.slo_id == slo_id))
    for s in silences:
        until = repo.utc(s.until)
        rows.append(
            AuditRow(
                _at(s.created_at),
                s.created_by,
                f"silenced the SLO until {utc_time(until) if until else '?'} {s.reason}".strip(),
            )
        )
        if s.ended_at is not None:
            rows.append(AuditRow(_at(s.ended_at), s.ended_by or "slo-bot", "ended the silence"))
    subscriptions = session.exec(select(SubscriptionRecord).where(SubscriptionRecord.service == service))
    for sub in subscriptions:
        rows.append(
            AuditRow(_at(sub.created_at), sub.created_by, f"subscribed {sub.channel} to {service}'s alerts")
        )
    rows.sort(key=lambda r: r.at, reverse=True)
    return rows[:MAX_AUDIT]


def _at(at: datetime) -> datetime:
    found = repo.utc(at)
    assert found is not None
    return found
