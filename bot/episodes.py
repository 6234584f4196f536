"""Alert episodes and what each cost: the error budget an SLO spent between an alert's start and its
end, from stored buckets. Shown when an alert resolves and by `/slo show`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from bot import budget
from bot.domain import SLO
from bot.messages import label, span, spent_text, utc_time, window_name
from bot.policy import policy_for
from bot.store import history
from bot.store.models import AlertRecord
from bot.store.repo import utc


@dataclass(frozen=True)
class Episode:
    key: str
    start: datetime  # when its failures began to count (see `episode_start`)
    fired_at: datetime
    end: datetime | None  # None: still firing
    cost_ratio: float | None  # share of the window's budget; None: no events to measure against
    budget: timedelta  # the whole budget as full-outage time (43.2 min for 99.9 % over 30 days)

    @property
    def spent(self) -> timedelta | None:
        return None if self.cost_ratio is None else self.budget * self.cost_ratio


def episode_start(slo: SLO, alert: AlertRecord) -> datetime:
    """A burn alert fires some time after its failures begin; counting from the firing would leave
    them out. Its failures count from its shortest window before it fired (5 minutes for the default
    page): long enough to hold an outage's start, short enough to leave out what came before."""
    fired = utc(alert.fired_at) or utc(alert.since)
    assert fired is not None
    rules = [r for r in policy_for(slo, slo.window.duration).rules if r.severity == alert.key]
    lead = min((r.short for r in rules), default=timedelta(0))
    return fired - lead


def cost_between(session: Session, slo: SLO, slo_id: int, start: datetime, end: datetime) -> float | None:
    """The share of the SLO's budget (over the window ending at `end`) spent in [start, end)."""
    if end <= start:
        return 0.0
    sums = history.window_sums(
        session=session, slo_id=slo_id, end=end, windows=[end - start, slo.window.duration]
    )
    return budget.episode_cost_ratio(
        sums[end - start], sums[slo.window.duration], slo.budgeting_method, slo.objective.target_ratio
    )


def episode_of(session: Session, slo: SLO, alert: AlertRecord, now: datetime) -> Episode:
    """A resolved alert's cost as measured when it resolved (older buckets get coarser, and the
    window's start drops out of the store); a firing one's so far."""
    fired = utc(alert.fired_at) or utc(alert.since)
    assert fired is not None
    end = utc(alert.resolved_at)
    start = episode_start(slo, alert)
    cost = alert.spent_ratio
    if end is None or cost is None:
        cost = cost_between(session, slo, alert.slo_id, start, end or now)
    return Episode(
        key=alert.key,
        start=start,
        fired_at=fired,
        end=end,
        cost_ratio=cost,
        budget=budget.budget_time(slo.objective.target_ratio, slo.window.duration),
    )


def record_cost(session: Session, slo: SLO, alert: AlertRecord, now: datetime) -> Episode:
    """Measure and keep what a just-resolved alert's episode cost."""
    episode = episode_of(session, slo, alert, now)
    alert.spent_ratio = episode.cost_ratio
    session.add(alert)
    return episode


def episodes_in_window(session: Session, slo: SLO, slo_id: int, now: datetime) -> list[Episode]:
    """Every alert of the SLO that fired within its window, newest first."""
    alerts = session.exec(
        select(AlertRecord)
        .where(
            AlertRecord.slo_id == slo_id,
            col(AlertRecord.fired_at).is_not(None),
            col(AlertRecord.fired_at) >= now - slo.window.duration,
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
