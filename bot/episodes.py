"""Alert episodes and what each cost: the error budget an SLO spent between an alert's start and its
end, from stored buckets. Shown when an alert resolves and by `/slo show`."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from bot import budget, impact
from bot.domain import SLO
from bot.messages import label, span, spent_text, utc_time, window_name
from bot.periods import period_bounds
from bot.store import history
from bot.store.models import AlertRecord
from bot.store.repo import utc


@dataclass(frozen=True)
class Episode:
    key: str
    start: datetime  # when its failures began to count (see `bot.impact.episode_start`)
    fired_at: datetime
    end: datetime | None  # None: still firing
    cost_ratio: float | None  # share of the window's budget; None: no events to measure against
    budget: timedelta  # the whole budget as full-outage time (43.2 min for 99.9 % over 30 days)

    @property
    def spent(self) -> timedelta | None:
        return None if self.cost_ratio is None else self.budget * self.cost_ratio


def cost_between(session: Session, slo: SLO, slo_id: int, alert: AlertRecord, end: datetime) -> float | None:
    """The share of the budget the alert's episode spent until `end` (see `bot.impact`)."""
    fired = utc(alert.fired_at) or utc(alert.since)
    assert fired is not None

    def sums(windows: Sequence[timedelta]) -> Mapping[timedelta, budget.WindowCounts]:
        return history.window_sums(session=session, slo_id=slo_id, end=end, windows=windows)

    return impact.episode_cost(slo, alert.key, fired, end, sums)


def episode_of(session: Session, slo: SLO, alert: AlertRecord, now: datetime) -> Episode:
    """A resolved alert's cost as measured when it resolved (older buckets get coarser, and the
    window's start drops out of the store); a firing one's so far."""
    fired = utc(alert.fired_at) or utc(alert.since)
    assert fired is not None
    end = utc(alert.resolved_at)
    start = impact.episode_start(slo, alert.key, fired)
    cost = alert.spent_ratio
    if end is None or cost is None:
        cost = cost_between(session, slo, alert.slo_id, alert, end or now)
    return Episode(
        key=alert.key,
        start=start,
        fired_at=fired,
        end=end,
        cost_ratio=cost,
        budget=impact.budget_minutes(slo, end or now),
    )


def record_cost(session: Session, slo: SLO, alert: AlertRecord, now: datetime) -> Episode:
    """Measure and keep what a just-resolved alert's episode cost."""
    episode = episode_of(session, slo, alert, now)
    alert.spent_ratio = episode.cost_ratio
    session.add(alert)
    return episode


def episodes_in_window(session: Session, slo: SLO, slo_id: int, now: datetime) -> list[Episode]:
    """Every alert of the SLO that fired within its current period, newest first."""
    period_start, _ = period_bounds(slo.window, now)
    alerts = session.exec(
        select(AlertRecord)
        .where(
            AlertRecord.slo_id == slo_id,
            col(AlertRecord.fired_at).is_not(None),
            col(AlertRecord.fired_at) >= period_start,
        )
        .order_by(col(AlertRecord.fired_at).desc())
    )
    return [episode_of(session, slo, a, now) for a in alerts]


def impact_text(episode: Episode, window: str) -> str:
    """For a window written "30d": consumed 23.0 % of the 30-day budget (9.9 of 43.2 minutes)."""
    if episode.cost_ratio is None:
        return f"its cost is unknown: no events were recorded in the {window_name(window)} window"
    return "consumed " + spent_text(episode.cost_ratio, episode.budget, window)


def episode_line(episode: Episode, window: str, time: Callable[[datetime], str] = utc_time) -> str:
    """One line of `/slo show`: what fired, when, for how long, and what it cost."""
    lasted = f"for {span(episode.end - episode.fired_at)}" if episode.end else "still firing"
    return f"{label(episode.key)} at {time(episode.fired_at)}, {lasted}: {impact_text(episode, window)}"
