"""Refunds through the real HTTP endpoint of `slo-bot run` and the fake Slack: a page that resolves
on its own is refunded with `/slo refund` and the buttons on its message, by responders only; its
message, thread, `/slo show` and the trail say who and why; its budget comes back, and undone, goes."""

from __future__ import annotations

import json

from sqlmodel import Session

from bot.store import db, repo
from tests.fakeslack import FakeSlack
from tests.slack.conftest import BotFactory
from tests.slack.harness import RESPONDER, SECOND, STRANGER, Store, catalogue
from tests.slack.test_commands import Asker
from tests.slack.test_flow import Channel, _shown


def _remaining(database_url: str) -> float:
    """The budget left at the SLO's latest evaluation."""
    engine = db.make_engine(database_url)
    try:
        with Session(engine) as session:
            record = repo.get_slo(session=session, name="checkout-availability")
            assert record is not None and record.id is not None
            snapshot = repo.latest_snapshot(session, record.id)
            assert snapshot is not None and snapshot.remaining_ratio is not None
            return snapshot.remaining_ratio
    finally:
        engine.dispose()


def test_a_resolved_breach_is_refunded_and_the_refund_undone(
    start_bot: BotFactory, slack: FakeSlack, store: Store, database_url: str
) -> None:
    # 2 % errors (20x) for the last 62 minutes, ending now: a page at once, which
    # resolves once the 5-minute burn is back under 14.4x. The same traffic every hour: with the
    # simulated night (5 % of the peak at 03:00 UTC), a morning's 62 minutes were most of the last
    # 6 hours' requests, and the 6h/30m page held the breach open for half an hour
    text = catalogue(incident_minutes=62, error_ratio=0.02).replace("duration: 6h", "duration: 62m")
    text = text.replace("requests_per_minute: 1000\n", "requests_per_minute: 1000\n    night_ratio: 1.0\n", 1)
    assert "night_ratio: 1.0" in text
    bot = start_bot(text)
    slack.wait_calls("chat.postMessage", 1)
    channel = Channel(bot, slack)
    ask = Asker(bot)
    breach = store.breaches("checkout-availability")[0]
    assert "still open: refund it once it has resolved" in ask(f"refund {breach.id} noise")
    slack.wait_until(lambda: "Resolved" in channel.page()["text"], 300, "the page to resolve")
    breach = store.breaches("checkout-availability")[0]
    assert breach.state == "resolved" and breach.spent_ratio and breach.spent_ratio > 0
    assert "Refund (false positive)" in _shown(channel.page())

    # refusals and bad input change nothing
    assert "Only members of <#C0ALERTS>" in ask(f"refund {breach.id} noise", user=STRANGER)
    assert "Why is it a false positive?" in ask(f"refund {breach.id}")
    assert "Which breach?" in ask("refund")
    assert "There is no breach #999" in ask("refund 999 noise")
    assert not [e for e in store.breach_events() if e.event.startswith("refund")]

    before = _remaining(database_url)
    answer = ask(f"refund #{breach.id} a probe's synthetic errors")
    assert answer.startswith(f"Breach #{breach.id} of `checkout-availability` is refunded: the ")
    assert "of the budget it spent is given back" in answer
    assert "refunded already" in ask(f"refund {breach.id} again")
    slack.wait_until(lambda: "Undo refund" in _shown(channel.page()), 20, "the refunded message")
    shown = _shown(channel.page())
    assert f"a false positive, by <@{RESPONDER}>: a probe's synthetic errors" in shown
    slack.wait_until(lambda: any("false positive" in t for t in channel.thread()), 20, "the note")
    assert f"<@{RESPONDER}> marked this breach a false positive" in " ".join(channel.thread())
    assert f"↩️ Breach #{breach.id} refunded by <@{RESPONDER}>" in ask("show checkout-availability")
    # the next evaluations give the budget back: what the breach spent
    slack.wait_until(
        lambda: _remaining(database_url) > before + 0.8 * (breach.spent_ratio or 0), 30, "the budget back"
    )

    # undone with the button, by another responder: the budget counts again
    channel.click("alert_unrefund", SECOND)
    slack.wait_until(lambda: "Refund (false positive)" in _shown(channel.page()), 20, "the undone message")
    slack.wait_until(lambda: any("took the refund back" in t for t in channel.thread()), 20, "the note")
    assert "refunded by" not in ask("show checkout-availability")
    slack.wait_until(
        lambda: abs(_remaining(database_url) - before) < 0.2 * (breach.spent_ratio or 1), 30, "it spent"
    )
    key = channel.click("alert_refund", STRANGER)
    assert "Only members" in json.dumps(slack.wait_response(key))
    channel.click("alert_refund", RESPONDER)
    slack.wait_until(lambda: "marked on its message" in _shown(channel.page()), 20, "refunded again")
    trail = [(e.event, e.actor) for e in store.breach_events() if e.breach_id == breach.id]
    assert trail[-3:] == [("refunded", RESPONDER), ("refund undone", SECOND), ("refunded", RESPONDER)]
