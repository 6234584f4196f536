"""Breaches as episodes and what each cost: the error budget an SLO spent between a breach's start and
its end, from stored buckets. Shown when a breach resolves and by `/slo show`."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from bot import breaches, budget, composite, exhaustion, impact, parts
from bot.alerting import FIRING
from bot.domain import SLO
from bot.messages import BreachFacts, SignalLine, headline, span, spent_text, utc_time, window_name
from bot.periods import period_bounds
from bot.store import breaches as breach_store
from bot.store import history
from bot.store import refunds as refund_store
from bot.store.models import BreachRecord
from bot.store.repo import utc


@dataclass(frozen=True)
class Episode:
    number: int  # the breach's
    kind: str  # burn | no-data | budget
    key: str  # its highest severity
    start: datetime  # when its failures began to count (see `bot.impact.episode_start`)
    fired_at: datetime
    end: datetime | None  # None: still open
    cost_ratio: float | None  # share of the window's budget; None: no events to measure against
    budget: timedelta  # the whole budget as full-outage time (43.2 min for 99.9 % over 30 days)
    acknowledged_at: datetime | None = None

    @property
    def spent(self) -> timedelta | None:
        return None if self.cost_ratio is None else self.budget * self.cost_ratio

    @property
    def time_to_acknowledge(self) -> timedelta | None:
        return None if self.acknowledged_at is None else self.acknowledged_at - self.fired_at


def cost_between(session: Session, slo: SLO, breach: BreachRecord, end: datetime) -> float | None:
    """The share of the budget the breach spent until `end` (see `bot.impact`), of the events that
    count: maintenance windows and refunded breaches are left out of it as out of every number."""
    from bot.store import adjustments as adjustment_store  # (dateutil: only when a breach is costed)

    opened = utc(breach.opened_at)
    assert opened is not None
    exclusions = adjustment_store.load_exclusions(session=session)

    def sums_of(slo_id: int, of: SLO = slo) -> impact.WindowSums:
        def sums(windows: Sequence[timedelta]) -> Mapping[timedelta, budget.WindowCounts]:
            counts = history.window_sums(session=session, slo_id=slo_id, end=end, windows=windows)
            excluded = exclusions.of(of, end - max(windows), end) if windows else ()
            return adjustment_store.subtract_excluded(
                session=session, slo_id=slo_id, excluded=excluded, end=end, counts=counts
            )

        return sums

    if slo.parts:  # the weighted mean of what the episode cost each part (`bot.composite`)
        costs = [
            (
                weight,
                None
                if part_id is None
                else impact.episode_cost(part, breach.peak, opened, end, sums_of(part_id, part)),
            )
            for weight, part, part_id in parts.part_ids(session, slo, breach.slo_id)
        ]
        return composite.burn_rate(costs)
    return impact.episode_cost(slo, breach.peak, opened, end, sums_of(breach.slo_id))


def episode_span(slo: SLO, breach: BreachRecord) -> tuple[datetime, datetime]:
    """The span a resolved breach's cost is measured over: what a refund of it leaves out."""
    opened, resolved = utc(breach.opened_at), utc(breach.resolved_at)
    assert opened is not None and resolved is not None
    return impact.episode_start(slo, breach.peak, opened), resolved


def episode_of(session: Session, slo: SLO, breach: BreachRecord, now: datetime) -> Episode:
    """A resolved breach's cost as measured when it resolved (older buckets get coarser, and the
    window's start drops out of the store); an open one's so far."""
    opened = utc(breach.opened_at)
    assert opened is not None
    end = utc(breach.resolved_at)
    cost = breach.spent_ratio
    if end is None or cost is None:
        cost = cost_between(session, slo, breach, end or now)
    return Episode(
        number=breach.id or 0,
        kind=breach.kind,
        key=breach.peak,
        start=impact.episode_start(slo, breach.peak, opened),
        fired_at=opened,
        end=end,
        cost_ratio=cost,
        budget=impact.budget_minutes(slo, end or now),
        acknowledged_at=utc(breach.acknowledged_at),
    )


def record_cost(session: Session, slo: SLO, breach: BreachRecord, now: datetime) -> Episode:
    """Measure and keep what a just-resolved breach cost."""
    episode = episode_of(session, slo, breach, now)
    breach.spent_ratio = episode.cost_ratio
    session.add(breach)
    return episode


def episodes_in_window(session: Session, slo: SLO, slo_id: int, now: datetime) -> list[Episode]:
    """Every breach of the SLO opened within its current period, newest first."""
    period_start, _ = period_bounds(slo.window, now)
    found = session.exec(
        select(BreachRecord)
        .where(BreachRecord.slo_id == slo_id, col(BreachRecord.opened_at) >= period_start)
        .order_by(col(BreachRecord.opened_at).desc(), col(BreachRecord.id).desc())
    )
    return [episode_of(session, slo, b, now) for b in found]


def impact_text(episode: Episode, window: str) -> str:
    """For a window written "30d": consumed 23.0 % of the 30-day budget (9.9 of 43.2 minutes)."""
    if episode.cost_ratio is None:
        return f"its cost is unknown: no events were recorded in the {window_name(window)} window"
    return "consumed " + spent_text(episode.cost_ratio, episode.budget, window)


def episode_line(episode: Episode, window: str, time: Callable[[datetime], str] = utc_time) -> str:
    """One line of `/slo show`: which breach, its highest severity, when, for how long, how soon it
    was acknowledged, and what it cost."""
    lasted = f"for {span(episode.end - episode.fired_at)}" if episode.end else "still open"
    acked = episode.time_to_acknowledge
    ack = "not acknowledged" if acked is None else f"acknowledged after {span(max(acked, timedelta(0)))}"
    what = headline(episode.kind, episode.key)
    return (
        f"#{episode.number} {what} at {time(episode.fired_at)}, {lasted}, {ack}: "
        f"{impact_text(episode, window)}"
    )


def breach_facts(
    session: Session,
    slo: SLO,
    breach: BreachRecord,
    now: datetime,
    incidents: tuple[str, ...] = (),
    status: budget.Status | None = None,
) -> BreachFacts:
    """The breach as its message shows it, from the store: its signals, notices, people, cost, and
    while it is open, its budget's outlook at `status` (the SLO's latest evaluation)."""
    signals = breach_store.signals_of(session=session, breach_id=breach.id or 0)
    lines = [
        SignalLine(a.key, utc(a.fired_at) or now, utc(a.resolved_at))
        for a in signals
        if a.fired_at is not None
    ]
    firing = breach.state == FIRING
    outlook = None
    if firing and status is not None:
        outlook = exhaustion.outlook(session, slo, breach.slo_id, status)
    # only a resolved breach can be refunded: an open one costs no read for it
    refund = None if firing else refund_store.active(session=session, breach_id=breach.id or 0)
    return BreachFacts(
        number=breach.id or 0,
        kind=breach.kind,
        severity=breach.severity if firing else breach.peak,
        firing=firing,
        opened_at=utc(breach.opened_at) or now,
        resolved_at=utc(breach.resolved_at),
        clear_since=utc(breach.clear_since),
        signals=tuple(s for s in lines if breaches.kind_of(s.key) != breaches.BUDGET),
        notices=tuple(s for s in lines if breaches.kind_of(s.key) == breaches.BUDGET),
        burn_rates=breach_store.burn_rates(breach),
        reason=breach.reason,
        acknowledged_by=breach.acknowledged_by,
        acknowledged_at=utc(breach.acknowledged_at),
        incidents=incidents,
        spent_ratio=breach.spent_ratio,
        budget_back_at=outlook.back_at if outlook is not None else None,
        outlook=outlook,
        refunded_by=refund.by if refund is not None else None,
        refund_reason=refund.why if refund is not None else "",
    )
