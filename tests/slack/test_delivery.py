"""Delivery that loses nothing and repeats nothing: Slack rate-limiting, failing, hanging, dropping
connections, and the bot killed in the middle of a post."""

from __future__ import annotations

import itertools
import json
import time
from typing import Any

import pytest

from tests.fakeslack import Call, FakeSlack
from tests.slack.conftest import BotFactory
from tests.slack.harness import ALERTS, RESPONDER, BotProcess, Store, catalogue, wait_for

SRE = "C0SRE"
TWO_CHANNELS = f"{ALERTS},#sre"  # one breach, two messages; a channel may be routed to by name
ON_CALL = "U0ONCALL"  # a member of #sre only
RETRY_AFTER = 2


def _alerts_in(slack: FakeSlack, channel: str) -> list[dict[str, Any]]:
    return [m for m in slack.messages(channel) if "thread_ts" not in m or m["thread_ts"] == m["ts"]]


def _notes_in(slack: FakeSlack, channel: str) -> list[str]:
    return [m["text"] for m in slack.messages(channel) if m.get("thread_ts") not in (None, m["ts"])]


def _to(slack: FakeSlack, method: str, channel: str) -> list[Call]:
    """Calls of `method` Slack took (status 0: it did the work, the answer was lost) for `channel`."""
    names = {channel, "#sre"} if channel == SRE else {channel}
    return [c for c in slack.calls_of(method) if c.params.get("channel") in names and c.status in (0, 200)]


def _acknowledged_everywhere(slack: FakeSlack, by: str = RESPONDER) -> bool:
    return all(
        _alerts_in(slack, c)
        and f"Acknowledged by <@{by}>" in json.dumps(_alerts_in(slack, c)[-1]["attachments"])
        and _notes_in(slack, c)
        for c in (ALERTS, SRE)
    )


def _exactly_once_in_order(slack: FakeSlack, by: str = RESPONDER) -> None:
    """In each channel: one breach message, updated in place after it was posted, and one note."""
    for channel in (ALERTS, SRE):
        alerts = _alerts_in(slack, channel)
        assert len(alerts) == 1, f"{channel}: {len(alerts)} breach messages"
        assert _notes_in(slack, channel) == [f"<@{by}> acknowledged this breach."]
        posts = [c for c in _to(slack, "chat.postMessage", channel) if not c.params.get("thread_ts")]
        assert len(posts) == 1  # Slack took exactly one post, never a repeat
        updates = _to(slack, "chat.update", channel)
        assert all(u.params["ts"] == alerts[0]["ts"] for u in updates)
        assert all(u.at >= posts[0].at for u in updates)  # never an update before the post


def test_rate_limits_and_server_errors_delay_messages_but_lose_and_repeat_none(
    start_bot: BotFactory, slack: FakeSlack, store: Store
) -> None:
    slack.add_channel(SRE, "sre", [ON_CALL])
    # first Slack errors, then it rate-limits: counted in calls, not seconds, so the outage is met
    # however long the bot takes to start and evaluate on a busy machine
    for method in ("chat.postMessage", "chat.update"):
        slack.fail(method, status=500, times=2)
        slack.fail(method, status=429, times=2, retry_after=RETRY_AFTER)
    bot = start_bot(catalogue(channel=TWO_CHANNELS))
    slack.wait_until(lambda: slack.calls_of("chat.postMessage"), what="a first attempt")
    assert not slack.all_messages()

    # the on-call of #sre acts during the outage: the answer is immediate, the messages wait
    started = time.monotonic()
    answer = bot.answer("ack checkout-availability", user=ON_CALL, channel=SRE)
    assert time.monotonic() - started < 3.0
    assert f"Acknowledged breach #{store.breaches()[0].id} (PAGE)" in answer["text"]

    slack.wait_until(lambda: _acknowledged_everywhere(slack, ON_CALL), 60, "every message after the outage")
    time.sleep(3)  # and nothing more comes
    _exactly_once_in_order(slack, ON_CALL)

    # Retry-After was honoured, and 5xx answers were retried with a growing pause
    calls = [c for c in slack.calls if c.method in ("chat.postMessage", "chat.update")]
    for earlier, later in itertools.pairwise(calls):
        if earlier.status == 429:
            assert later.at - earlier.at >= RETRY_AFTER - 0.2, "a call came before Retry-After"
    posts = [c for c in calls if c.method == "chat.postMessage"]
    failed_posts = [c for c in posts if c.status in (429, 500)]
    assert len(failed_posts) == 4, failed_posts  # every failure the outage had, each met once
    assert all(c.at > failed_posts[-1].at for c in posts if c.status == 200)  # then, and only then, posted
    assert all(o.status == "done" for o in store.outbox())
    metrics = bot.http.get("/metrics").text
    assert 'slo_bot_slack_errors_total{reason="retry"}' in metrics


# The client gives up after 10 s: this waits that long, so it runs on one database only (the
# in-flight flag's round trip through both is covered by the kill test below).
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_post_whose_answer_never_comes_is_found_in_the_channel_not_sent_twice(
    start_bot: BotFactory, slack: FakeSlack, store: Store
) -> None:
    slack.add_channel(SRE, "sre", [RESPONDER])
    slack.hang("chat.postMessage", times=1, seconds=20, apply=True)  # Slack posts it; the answer is lost
    slack.drop("chat.postMessage", times=1, apply=True)  # then a connection dies after the post
    bot = start_bot(catalogue(channel=TWO_CHANNELS))
    slack.wait_until(lambda: _alerts_in(slack, ALERTS) and _alerts_in(slack, SRE), 40, "both posts")
    slack.wait_until(lambda: len(store.breaches()) == 1, 10, "the breach")
    wait_for(lambda: not any(o.in_flight for o in store.outbox()), 30, "the lost answers sorted out")
    assert bot.command("ack checkout-availability").status_code == 200
    slack.wait_until(lambda: _acknowledged_everywhere(slack), 40, "the acknowledgement everywhere")
    time.sleep(2)
    _exactly_once_in_order(slack)
    history = slack.calls_of("conversations.history", ok_only=True)
    assert {c.params["channel"] for c in history} == {ALERTS, SRE}
    assert all(str(c.params["include_all_metadata"]).lower() in ("true", "1") for c in history)


def test_kill_9_in_the_middle_of_a_post_then_restart_loses_and_repeats_nothing(
    start_bot: BotFactory, slack: FakeSlack, store: Store
) -> None:
    slack.add_channel(SRE, "sre", [RESPONDER])
    slack.hang("chat.postMessage", times=1, seconds=60, apply=True)
    first = start_bot(catalogue(channel=TWO_CHANNELS), name="first")
    slack.wait_until(lambda: len(_alerts_in(slack, ALERTS)) == 1, 30, "the first post")
    first.kill()  # mid-post: Slack has the message, the bot never heard back; SRE not posted yet
    assert not _alerts_in(slack, SRE)
    # the two posts, and the breach's chart for each thread, queued behind its post
    assert [(o.kind, o.status) for o in store.outbox()] == [("alert_message", "pending")] * 2 + [
        ("chart", "pending")
    ] * 2

    second = start_bot(catalogue(channel=TWO_CHANNELS), name="second")
    slack.wait_until(lambda: len(_alerts_in(slack, SRE)) == 1, 30, "the post to the second channel")

    # killed again in the middle of the work an acknowledgement queues (two updates, two notes)
    slack.hang("chat.update", times=1, seconds=60, apply=True)
    acked = f"Acknowledged breach #{store.breaches()[0].id} (PAGE)"
    assert acked in second.answer("ack checkout-availability")["text"]
    slack.wait_until(lambda: slack.calls_of("chat.update"), 30, "the first update")
    second.kill()
    assert not _notes_in(slack, ALERTS) and not _notes_in(slack, SRE)
    third: BotProcess = start_bot(catalogue(channel=TWO_CHANNELS), name="third")
    slack.wait_until(lambda: _acknowledged_everywhere(slack), 30, "the acknowledgement everywhere")
    wait_for(lambda: all(o.status == "done" for o in store.outbox()), 30, "an empty outbox")
    time.sleep(2)
    _exactly_once_in_order(slack)
    assert third.http.get("/healthz").status_code == 200
    assert len(store.breaches()) == 1  # three processes, one breach
    signals = [(e.event, e.actor) for e in store.events()]
    assert signals.count(("firing", None)) == 1
    events = [(e.event, e.actor) for e in store.breach_events()]
    assert events.count(("opened", None)) == 1 and events.count(("acknowledged", RESPONDER)) == 1


def test_a_silence_holds_back_an_unsent_alert_and_unsilence_lets_it_out_at_once(
    start_bot: BotFactory, slack: FakeSlack, store: Store
) -> None:
    slack.add_channel(SRE, "sre", [RESPONDER])
    slack.fail("chat.postMessage", status=500)  # the page cannot go out at first
    bot = start_bot(catalogue())
    slack.wait_until(lambda: slack.calls_of("chat.postMessage"), what="a first attempt")
    assert "is silenced for 30m" in bot.answer("silence checkout-availability 30m deploy")["text"]
    slack.heal()
    time.sleep(6)  # Slack is back, but the SLO is silenced: nothing is posted
    assert not slack.all_messages()
    silenced_at = time.monotonic()
    assert "no longer silenced" in bot.answer("unsilence checkout-availability")["text"]
    slack.wait_until(lambda: _alerts_in(slack, ALERTS), 10, "the page, right after the unsilence")
    assert time.monotonic() - silenced_at < 5
    time.sleep(1)
    page = _alerts_in(slack, ALERTS)
    assert len(page) == 1 and "Silenced by" not in json.dumps(page[0]["attachments"])
    assert "Silence 30m" in json.dumps(page[0]["attachments"])
