"""`/slo show` through the real HTTP endpoint: when a budget runs out, since when a spent one is spent
and when it comes back, on known histories (`tests.spenthistory`)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from tests import spenthistory
from tests.fakeslack import FakeSlack
from tests.slack.conftest import BotFactory
from tests.slack.harness import Store, wait_for
from tests.slack.test_commands import Asker


def _at(at: datetime) -> str:
    """The fallback text of Slack's date token: what a client that cannot localise shows."""
    return f"|{at:%Y-%m-%d %H:%M} UTC>"


def _field(shown: str, name: str) -> str:
    """The value of a `*Name*\\nvalue` field."""
    return shown.split(f"*{name}*\n", 1)[1].split("\n", 1)[0]


def test_show_gives_the_budget_runs_out_dates_and_a_spent_budgets_since_and_back(
    start_bot: BotFactory, slack: FakeSlack, store: Store, database_url: str, tmp_path: Path
) -> None:
    spenthistory.apply(database_url, tmp_path)
    # its first tick finds no source (nobody serves it) and no data; the next is 30 days away
    bot = start_bot(env={"SLO_BOT_EVAL_INTERVAL": "30d"})
    wait_for(lambda: store.evaluated() == 3, what="the first tick")
    expected = spenthistory.store(database_url)  # then the histories, newer than that tick
    ask = Asker(bot)

    left = ask("show budget-left")
    runs_out = _field(left, "Budget runs out")
    assert runs_out == (
        f"<!date^{int(expected.left_average_at.timestamp())}^{{date_short_pretty}} {{time}}"
        f"{_at(expected.left_average_at)} at the 30-day average burn (0.40x) · "
        f"<!date^{int(expected.left_6h_at.timestamp())}^{{date_short_pretty}} {{time}}"
        f"{_at(expected.left_6h_at)} at the 6h burn (2.00x)"
    )
    assert "not at this pace" not in left and "*Budget*\n" not in left

    rolling = _field(ask("show rolling-spent"), "Budget")
    assert rolling.startswith("Exhausted since <!date^")
    assert _at(expected.rolling_spent_since) in rolling.split(", back at ")[0]
    assert rolling.endswith(f"{_at(expected.rolling_back_at)} if nothing more fails"), rolling
    assert "-10.9 %" in _field(ask("show rolling-spent"), "Budget remaining")

    calendar = _field(ask("show calendar-spent"), "Budget")
    assert _at(expected.calendar_spent_since) in calendar.split(", back at ")[0]
    assert calendar.endswith(f"{_at(expected.calendar_back_at)} when the period resets"), calendar
    assert "Budget runs out" not in ask("show calendar-spent")
