"""Calendar windows use the real length of the current period everywhere: budget minutes, burn-rate
thresholds (Sloth's factor), exhaustion and what an episode cost. A 31-day month holds 44.64 minutes
of budget at 99.9 %, February 2026 40.32, not the nominal 30 days' 43.2."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlmodel import Session, SQLModel

from bot import episodes, impact, messages, policy, replay
from bot.alerting import RESOLVED
from bot.budget import WindowCounts
from bot.domain import (
    SLO,
    Bucket,
    DataSource,
    Indicator,
    IndicatorKind,
    MetricQuery,
    Objective,
    TimeWindow,
)
from bot.messages import BreachFacts
from bot.periods import period_length
from bot.status import assess
from bot.store.models import BreachRecord

MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


def _slo(window: TimeWindow) -> SLO:
    q = MetricQuery(DataSource("s", "Simulated"), "good")
    return SLO("api", "svc", Indicator("i", IndicatorKind.RATIO, good=q, total=q), Objective(0.999), window)


MONTH = TimeWindow("1M", timedelta(days=30), is_rolling=False, calendar_start=datetime(2026, 1, 1))
BERLIN_MONTH = TimeWindow(
    "1M", timedelta(days=30), is_rolling=False, calendar_start=datetime(2026, 1, 1), time_zone="Europe/Berlin"
)
ROLLING = TimeWindow("30d", timedelta(days=30))


@pytest.mark.parametrize(
    ("window", "at", "minutes"),
    [
        (MONTH, datetime(2026, 1, 20, tzinfo=UTC), 44.64),
        (MONTH, datetime(2026, 2, 10, tzinfo=UTC), 40.32),
        (MONTH, datetime(2026, 4, 10, tzinfo=UTC), 43.2),
        # March in Berlin loses an hour to daylight saving time: 743 hours
        (BERLIN_MONTH, datetime(2026, 3, 10, tzinfo=UTC), 743 * 60 * 0.001),
        (ROLLING, datetime(2026, 2, 10, tzinfo=UTC), 43.2),
    ],
)
def test_budget_minutes_are_those_of_the_real_period(
    window: TimeWindow, at: datetime, minutes: float
) -> None:
    assert impact.budget_minutes(_slo(window), at) / MINUTE == pytest.approx(minutes)


def _resolved_text(window: TimeWindow, at: datetime) -> dict[str, str]:
    facts = BreachFacts(1, "burn", "page", False, at - HOUR, resolved_at=at, spent_ratio=0.5)
    return dict(messages.breach_message(_slo(window), facts, None).fields)


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (datetime(2026, 1, 20, tzinfo=UTC), "50.0 % of the 1-month budget (22.3 of 44.6 minutes)"),
        (datetime(2026, 2, 20, tzinfo=UTC), "50.0 % of the 1-month budget (20.2 of 40.3 minutes)"),
    ],
)
def test_a_resolved_alert_says_its_cost_in_the_months_real_minutes(at: datetime, expected: str) -> None:
    assert _resolved_text(MONTH, at)["Budget spent"] == expected


def test_the_budget_remaining_of_a_firing_alert_counts_the_months_real_minutes() -> None:
    at = datetime(2026, 1, 20, tzinfo=UTC)
    facts = BreachFacts(1, "burn", "page", True, at)
    span = at - datetime(2026, 1, 1, tzinfo=UTC)
    rules = policy.policy_for(_slo(MONTH), period_length(MONTH, at))
    counts = {
        w: WindowCounts(good=999_500, total=1_000_000, covered=w, span=w) for w in {*rules.windows, span}
    }
    status = assess(
        _slo(MONTH),
        rules,
        counts,
        now=at,
        period_start=datetime(2026, 1, 1, tzinfo=UTC),
        period_end=datetime(2026, 2, 1, tzinfo=UTC),
        period_span=span,
    ).status
    fields = dict(messages.breach_message(_slo(MONTH), facts, status).fields)
    # half the budget left of 44.64 minutes
    assert fields["Budget remaining"] == "50.0 % of 44 min of full outage"


def _history(
    start: datetime, end: datetime, bad_from: datetime, bad_to: datetime, ratio: float
) -> replay.History:
    buckets = []
    at = start
    while at < end:
        bad = 1000 * ratio if bad_from <= at < bad_to else 0.0
        buckets.append(Bucket(at, MINUTE, good=1000 - bad, total=1000, covered=MINUTE))
        at += MINUTE
    return replay.History(start, MINUTE, buckets)


def test_replay_into_february_uses_februarys_page_threshold() -> None:
    """14x burn for an hour right after February begins: above February's 13.44x page threshold
    (28 days), below January's 14.88x (31 days). The replay starts in January."""
    feb = datetime(2026, 2, 1, tzinfo=UTC)
    slo = _slo(MONTH)
    history = _history(feb - 4 * DAY, feb + 3 * HOUR, feb, feb + HOUR, 0.014)
    result = replay.replay(slo, history, feb - HOUR, feb + 2 * HOUR, MINUTE)
    pages = [(t.at, t.event) for t in result.transitions if t.key == policy.PAGE]
    # the 1h window burns 14x once 57.6 minutes of it hold the errors: 13.44 / 14 x 60
    assert pages[:1] == [(feb + 58 * MINUTE, "firing")]


@pytest.mark.parametrize(
    ("at", "page_threshold"),
    [(datetime(2026, 1, 10, tzinfo=UTC), 14.88), (datetime(2026, 2, 10, tzinfo=UTC), 13.44)],
)
def test_live_thresholds_follow_the_period(at: datetime, page_threshold: float) -> None:
    rules = policy.policy_for(_slo(MONTH), period_length(MONTH, at))
    assert rules.rules[0].threshold == pytest.approx(page_threshold)


def test_an_episode_in_a_calendar_month_costs_its_share_of_the_months_events() -> None:
    """An episode early in February is measured against February's events so far, the same events
    as the budget remaining, not against a nominal 30 days reaching back into January."""
    feb = datetime(2026, 2, 1, tzinfo=UTC)
    history = _history(feb - 40 * DAY, feb + 2 * DAY, feb + DAY, feb + DAY + 10 * MINUTE, 1.0)
    fired, end = feb + DAY + 5 * MINUTE, feb + DAY + 40 * MINUTE

    def sums(windows: list[timedelta]) -> dict[timedelta, WindowCounts]:
        return {w: history.counts(end - w, end) for w in windows}

    cost = impact.episode_cost(_slo(MONTH), policy.PAGE, fired, end, sums)
    # 10,000 failed of the 1,480,000 events since February began (1 day 40 minutes)
    assert cost == pytest.approx(10_000 / (1_480_000 * 0.001))


def test_slo_show_lists_the_episodes_of_the_current_month_only(tmp_path: Path) -> None:
    """`/slo show` on 3 February: the page of 20 January belongs to January's budget, not February's,
    though it is within a nominal 30 days; February's episode is priced in February's minutes."""
    engine = create_engine(f"sqlite:///{tmp_path / 'episodes.db'}")
    SQLModel.metadata.create_all(engine)
    slo = _slo(MONTH)
    with Session(engine) as session:
        for fired in (datetime(2026, 1, 20, tzinfo=UTC), datetime(2026, 2, 2, tzinfo=UTC)):
            session.add(
                BreachRecord(
                    slo_id=1,
                    kind="burn",
                    severity="page",
                    peak="page",
                    state=RESOLVED,
                    opened_at=fired,
                    resolved_at=fired + HOUR,
                    spent_ratio=0.25,
                )
            )
        session.commit()
        found = episodes.episodes_in_window(session, slo, 1, datetime(2026, 2, 3, tzinfo=UTC))
    engine.dispose()
    assert [e.fired_at for e in found] == [datetime(2026, 2, 2, tzinfo=UTC)]
    line = episodes.episode_line(found[0], slo.window.spec)
    assert line.endswith("consumed 25.0 % of the 1-month budget (10.1 of 40.3 minutes)"), line


def test_time_to_exhaustion_counts_februarys_28_days() -> None:
    """Half the budget left, burning 2x over the last hour: a quarter of February's 28 days."""
    at = datetime(2026, 2, 10, tzinfo=UTC)
    feb, march = datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC)
    rules = policy.policy_for(_slo(MONTH), period_length(MONTH, at))
    span = at - feb
    counts = {w: WindowCounts(good=998_000, total=1_000_000, covered=w, span=w) for w in rules.windows}
    counts[span] = WindowCounts(good=999_500, total=1_000_000, covered=span, span=span)
    status = assess(
        _slo(MONTH), rules, counts, now=at, period_start=feb, period_end=march, period_span=span
    ).status
    assert status.exhaustion_at == at + 28 * DAY * 0.5 / 2
