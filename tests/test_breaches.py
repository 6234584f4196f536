"""One breach, one conversation: how signals group into breaches (`bot.breaches.advance`, pure)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from bot import breaches, impact, replay
from bot.alerting import FIRING, RESOLVED, Transition
from bot.breaches import BUDGET, BURN, NO_DATA_KIND, Change, OpenBreach
from bot.budget import Outlook, Pace, Status
from bot.domain import SLO, Bucket, Indicator, IndicatorKind, Objective, TimeWindow
from bot.messages import BreachFacts, breach_message

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


class Run:
    """Feeds `advance` one evaluation at a time, as the scheduler does."""

    def __init__(self) -> None:
        self.open: dict[str, OpenBreach] = {}
        self.firing: set[str] = set()
        self.changes: list[Change] = []
        self.at = T0

    def tick(self, fire: Sequence[str] = (), clear: Sequence[str] = ()) -> list[Change]:
        self.at += MINUTE
        transitions = [Transition(self.at, "api", k, FIRING) for k in fire]
        transitions += [Transition(self.at, "api", k, RESOLVED) for k in clear]
        self.firing |= set(fire)
        self.firing -= set(clear)
        self.open, changes = breaches.advance("api", self.open, transitions, self.firing, self.at)
        self.changes += changes
        return changes

    def opened(self) -> list[Change]:
        return [c for c in self.changes if c.event == breaches.OPENED]


def events(changes: Sequence[Change]) -> list[tuple[str, str, str]]:
    return [(c.kind, c.event, c.severity) for c in changes]


def test_a_fast_outage_that_spends_the_budget_is_one_breach_with_notices() -> None:
    run = Run()
    run.tick(fire=["page"])
    assert events(run.tick(fire=["budget-50", "budget-25", "budget-0"])) == [(BURN, "notice", "page")]
    notice = run.changes[-1]
    assert notice.keys == ("budget-50", "budget-25", "budget-0")  # one note for the three at once
    assert len(run.opened()) == 1
    assert BUDGET not in run.open  # no budget message of its own while the breach is open


def test_a_ticket_that_becomes_a_page_raises_the_same_breach_and_back() -> None:
    run = Run()
    run.tick(fire=["ticket"])
    assert events(run.tick(fire=["page"])) == [(BURN, "raised", "page")]
    assert run.open[BURN].severity == "page"
    assert events(run.tick(clear=["page"])) == [(BURN, "lowered", "ticket")]
    assert run.open[BURN].severity == "ticket" and run.open[BURN].peak == "page"
    assert len(run.opened()) == 1


def test_a_breach_ends_one_evaluation_after_every_signal_cleared() -> None:
    run = Run()
    run.tick(fire=["page", "ticket"])
    assert events(run.tick(clear=["page", "ticket"])) == [(BURN, "clearing", "page")]
    assert BURN in run.open
    # it comes back before the next evaluation: the same breach goes on
    assert events(run.tick(fire=["page"])) == [(BURN, "joined", "page")]
    run.tick(clear=["page"])
    ended = run.tick()
    assert events(ended) == [(BURN, "resolved", "page")]
    assert run.open == {}
    assert len(run.opened()) == 1


def test_two_outages_an_hour_apart_are_two_breaches() -> None:
    run = Run()
    run.tick(fire=["page"])
    run.tick(clear=["page"])
    run.tick()
    run.at += timedelta(hours=1)
    run.tick(fire=["page"])
    assert [c.opened_at for c in run.opened()] == [T0 + MINUTE, T0 + timedelta(hours=1, minutes=4)]


def test_budget_crossings_without_a_breach_are_one_notice_that_ends_on_recovery() -> None:
    run = Run()
    assert events(run.tick(fire=["budget-50"])) == [(BUDGET, "opened", "budget-50")]
    assert events(run.tick(fire=["budget-25"])) == [(BUDGET, "notice", "budget-25")]
    assert run.open[BUDGET].severity == "budget-25"
    run.tick(clear=["budget-25"])  # back above 25 % (+ margin): still below 50 %
    assert run.open[BUDGET].severity == "budget-50"
    assert events(run.tick(clear=["budget-50"])) == [(BUDGET, "resolved", "budget-25")]
    assert len(run.opened()) == 1


def test_a_breach_opening_while_a_budget_notice_is_open_takes_the_next_crossings() -> None:
    run = Run()
    run.tick(fire=["budget-50"])
    run.tick(fire=["page"])
    assert events(run.tick(fire=["budget-25"])) == [(BURN, "notice", "page")]
    assert run.open[BUDGET].severity == "budget-25"  # the notice's message shows the level too


def test_no_data_is_a_breach_of_its_own_kind() -> None:
    run = Run()
    run.tick(fire=["ticket"])
    assert events(run.tick(fire=["no-data"])) == [(NO_DATA_KIND, "opened", "no-data")]
    assert set(run.open) == {BURN, NO_DATA_KIND}


# --- budget exhausted: what it means and when the budget comes back ----------------------------------


def _slo(window: TimeWindow) -> SLO:
    return SLO("api", "shop", Indicator("api", IndicatorKind.RATIO), Objective(0.99), window)


def test_a_rolling_budget_is_back_once_the_failures_age_out_of_the_window() -> None:
    slo = _slo(TimeWindow("1d", timedelta(days=1)))
    now = T0 + timedelta(days=1)
    hours = [Bucket(T0 + k * timedelta(hours=1), timedelta(hours=1), 100.0, 100.0) for k in range(24)]
    # 50 failures in the first hour, 10 in the fifth: 60 of the 24 allowed (1 % of 2,400)
    hours[0] = Bucket(T0, timedelta(hours=1), 50.0, 100.0)
    hours[4] = Bucket(T0 + timedelta(hours=4), timedelta(hours=1), 90.0, 100.0)
    # the first hour leaving leaves 10 failures (<= 24): back an hour after the window passes it
    assert impact.budget_back(slo, hours, now) == T0 + timedelta(hours=1, days=1)
    assert impact.budget_back(slo, [Bucket(T0, timedelta(hours=1), 99.0, 100.0)], now) == now


def test_a_calendar_budget_is_back_with_the_next_period() -> None:
    month = TimeWindow("1M", timedelta(days=30), is_rolling=False, calendar_start=datetime(2026, 1, 1))
    assert impact.budget_back(_slo(month), (), T0) == datetime(2026, 12, 1, tzinfo=UTC)


def test_an_exhausted_budget_notice_says_what_it_means_and_when_it_is_back() -> None:
    slo = _slo(TimeWindow("30d", timedelta(days=30)))
    back = T0 + timedelta(days=3)
    facts = BreachFacts(7, "budget", "budget-0", True, T0, budget_back_at=back)
    words = breach_message(slo, facts, None)
    assert words.title == "📉 BUDGET EXHAUSTED (budget notice): api (shop) · breach #7"
    assert "the SLO is broken for this window" in words.meaning
    assert "freeze risky changes" in words.meaning
    assert "expected 2026-12-03 12:00 UTC" in words.meaning
    assert ("Budget back", "2026-12-03 12:00 UTC, if nothing more fails meanwhile") in words.fields
    assert words.colour == "danger"


def _status(remaining: float, burn_1h: float = 20.0) -> Status:
    return Status(
        T0, 0.99, 99.0, 100.0, 1 - remaining, remaining, {timedelta(hours=1): burn_1h}, None, "burning", 1.0
    )


def test_an_open_breach_says_when_the_budget_runs_out_at_the_average_and_the_6h_burn() -> None:
    slo = _slo(TimeWindow("30d", timedelta(days=30)))
    outlook = Outlook(
        0.6,
        (Pace(None, 0.4, T0 + timedelta(days=45)), Pace(timedelta(hours=6), 0.0, None)),
        None,
    )
    facts = BreachFacts(3, BURN, "page", True, T0, outlook=outlook)
    fields = dict(breach_message(slo, facts, _status(0.6)).fields)
    assert fields["Budget runs out"] == (
        "2027-01-14 12:00 UTC at the 30-day average burn (0.40x) · not at the 6h burn (0.00x)"
    )
    assert "Exhausted in" not in fields
    resolved = replace(facts, firing=False, resolved_at=T0 + timedelta(hours=1))
    assert "Budget runs out" not in dict(breach_message(slo, resolved, _status(0.6)).fields)


def test_an_open_breach_on_a_spent_budget_says_since_when_and_when_it_is_back() -> None:
    slo = _slo(TimeWindow("30d", timedelta(days=30)))
    back = T0 + timedelta(days=3)
    outlook = Outlook(-0.109, (), None, spent_since=T0 - timedelta(days=2), back_at=back)
    facts = BreachFacts(3, BURN, "page", True, T0, budget_back_at=back, outlook=outlook)
    fields = dict(breach_message(slo, facts, _status(-0.109)).fields)
    assert fields["Budget remaining"] == (
        "-10.9 % of 7 h 12 min of full outage; exhausted since 2026-11-28 12:00 UTC"
    )
    assert fields["Budget back"] == "2026-12-03 12:00 UTC, if nothing more fails meanwhile"
    assert "Budget runs out" not in fields
    unsure = replace(facts, outlook=replace(outlook, spent_since_exact=False))
    assert dict(breach_message(slo, unsure, _status(-0.109)).fields)["Budget remaining"].endswith(
        "exhausted since 2026-11-28 12:00 UTC or earlier"
    )


# --- replay numbers every signal transition with its breach ------------------------------------------


def test_replay_numbers_the_transition_that_ends_a_budget_notice() -> None:
    """A budget notice ends in the same evaluation as its signal clears (its hysteresis was the wait):
    that transition still names the notice, and the notice's cost is on its line."""
    window = TimeWindow("1d", timedelta(days=1))
    quiet = {"slo-bot/min-bad-events": "1e9"}  # no burn breach: the budget alone speaks
    slo = replace(_slo(window), annotations=quiet)
    minute = timedelta(minutes=1)
    start = T0 - timedelta(days=1)
    # a bad first hour (6 % errors): while the 1-day window holds little else, less than half its
    # budget is left; as the day's traffic fills it, the budget is back above 52 %
    buckets = [
        Bucket(start + k * minute, minute, 94.0 if k < 60 else 100.0, 100.0, minute) for k in range(3 * 1440)
    ]
    history = replay.History(start, minute, buckets)
    result = replay.replay(
        slo, history, start + timedelta(hours=2), start + timedelta(days=1, hours=3), minute
    )
    budget = [(i, t) for i, t in enumerate(result.transitions) if t.key == "budget-50"]
    assert [t.event for _, t in budget] == ["firing", "resolved"]
    assert [result.breach_of.get(i) for i, _ in budget] == [1, 1]
    (notice,) = result.episodes
    assert (notice.kind, notice.resolved_at) == ("budget", budget[1][1].at)
