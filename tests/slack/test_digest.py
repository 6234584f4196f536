"""`/slo digest` through the real endpoint, and the weekly digest `slo-bot run` posts at its due
minute into the fake Slack, once."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from tests.fakeslack import FakeSlack
from tests.slack.conftest import BotFactory
from tests.slack.harness import ALERTS, RESPONDER, STRANGER, Store, catalogue

DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def _digests(slack: FakeSlack) -> list[dict]:
    return [m for m in slack.messages(ALERTS) if "Weekly SLO digest" in m.get("text", "")]


def test_a_channel_member_sets_a_weekly_digest_and_it_comes_at_its_minute_once(
    start_bot: BotFactory, slack: FakeSlack, store: Store
) -> None:
    bot = start_bot(catalogue())
    slack.wait_calls("chat.postMessage", 1)  # the page of checkout-availability is out

    text = bot.answer("digest mon 9:00 Europe/Berlinn")["text"]
    assert "'Europe/Berlinn' is not a time zone" in text and "Usage" in text
    denied = bot.answer(f"digest <#{ALERTS}|alerts> friday 17:00", user=STRANGER)["text"]
    assert "Only members of" in denied
    assert "No channel gets a weekly digest yet" in bot.answer("digest list")["text"]

    # due at the next whole minute (at least 20 s away), in UTC
    due = (datetime.now(UTC) + timedelta(seconds=80)).replace(second=0, microsecond=0)
    when = f"{DAYS[due.weekday()]} {due:%H:%M} UTC"
    set_text = bot.answer(f"digest {when}", user=RESPONDER, channel=ALERTS)["text"]
    assert f"<#{ALERTS}> gets a weekly digest every {when}" in set_text
    listed = bot.answer("digest list")["text"]
    assert f"<#{ALERTS}>: {when} (set by <@{RESPONDER}>" in listed
    assert not _digests(slack)

    slack.wait_until(lambda: _digests(slack), timeout=150, what="the weekly digest")
    (digest,) = _digests(slack)
    assert float(digest["ts"]) >= due.timestamp() - 1  # not before its minute
    assert "`checkout-availability`" in digest["text"] and "`search-latency`" not in digest["text"]
    assert "budget" in digest["text"] and "breach" in digest["text"]
    # and its chart, in the channel (not in a thread), after it
    slack.wait_until(
        lambda: (
            slack.uploads(ALERTS)
            and any(
                float(m["ts"]) > float(digest["ts"]) and "thread_ts" not in m for m in slack.uploads(ALERTS)
            )
        ),
        timeout=60,
        what="the digest's chart",
    )
    shared = [
        m for m in slack.uploads(ALERTS) if float(m["ts"]) > float(digest["ts"]) and "thread_ts" not in m
    ]
    assert (slack.files[shared[0]["files"][0]["id"]].data or b"")[:8] == b"\x89PNG\r\n\x1a\n"
    time.sleep(5)  # more ticks go by: nothing more
    assert len(_digests(slack)) == 1

    assert "gets no weekly digest any more" in bot.answer("digest off")["text"]
    assert "No channel gets a weekly digest yet" in bot.answer("digest list")["text"]
