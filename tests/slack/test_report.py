"""`/slo report` through the real HTTP endpoint of `slo-bot run`: the week of `tests.reviewhistory`
as the person who typed it reads it."""

from __future__ import annotations

from pathlib import Path

from tests import reviewhistory
from tests.fakeslack import FakeSlack
from tests.slack.conftest import BotFactory
from tests.slack.harness import Store, wait_for
from tests.slack.test_commands import Asker


def test_report_answers_the_weeks_figures_per_slo(
    start_bot: BotFactory, slack: FakeSlack, store: Store, database_url: str, tmp_path: Path
) -> None:
    reviewhistory.apply(database_url, tmp_path)
    # its first tick finds no source (nobody serves it) and no data; the next is 30 days away
    bot = start_bot(env={"SLO_BOT_EVAL_INTERVAL": "30d"})
    wait_for(lambda: store.evaluated() == 3, what="the first tick")
    week = reviewhistory.store(database_url)
    ask = Asker(bot)

    shown = ask("report")
    assert shown.startswith("*SLO report: the last 7 days*\n<!date^")
    lines = {line.split("`")[1]: line for line in shown.splitlines() if line.count("`") >= 2}
    checkout = lines["checkout-availability"]
    assert "SLI 99.938 % (objective 99.900 %, data for 43 % of the period)" in checkout
    reading = f"|{week.reading_at:%Y-%m-%d %H:%M} UTC>"
    assert "budget 37.5 % left (-42.5 pts since <!date^" in checkout and reading in checkout
    assert "; 62.5 % spent in the period)" in checkout
    # the week's three, and the no-data breach the bot's first tick opened (its source is nobody)
    kinds = sorted(b.kind for b in store.breaches("checkout-availability"))
    assert kinds == ["burn", "burn", "burn", "burn", "no-data"]  # a burn one is older than the week
    assert "4 breach(es), 2 of 4 acknowledged, median 7 min; most spent: #" in checkout
    assert checkout.endswith("(41.7 %)")
    assert checkout.startswith("🟢 ")  # 99.938 % meets 99.9 % over the week
    assert "not evaluated since" in shown  # the source nobody serves, said per SLO
    assert "&lt;b&gt;cannot reach it&lt;/b&gt;" in shown  # a server's words as text

    only = ask("report checkout 30d")
    assert only.startswith("*SLO report of checkout: the last 30 days*")
    assert "checkout-latency" in only and "search-availability" not in only
    assert "data for 10 % of the period" in only  # 3 days of 30

    typo = ask("report chekout")
    assert "No SLO belongs to a service called `chekout`. Did you mean `checkout`?" in typo
    assert "/slo report [SERVICE] [7d|30d|quarter]" in typo
    assert "`/slo report [SERVICE] [7d|30d|quarter]  (SLI, budget and breaches" in ask("help")
    assert max(ask.seconds) < 3.0
