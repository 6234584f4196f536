"""The whole flow, as the on-call engineer lives it: a breach is posted to the SLO's channel, a member
acknowledges it with the button, silences it, unsilences it; a stranger's click changes nothing."""

from __future__ import annotations

import json
import time
from typing import Any

from tests.fakeslack import FakeSlack
from tests.slack.conftest import BotFactory
from tests.slack.harness import (
    ALERTS,
    RESPONDER,
    SECOND,
    STRANGER,
    BotProcess,
    Store,
    block_action,
    catalogue,
    home_opened,
)


def _shown(message: dict[str, Any]) -> str:
    return json.dumps(message.get("attachments") or message.get("blocks"), ensure_ascii=False)


class Channel:
    """The #alerts channel as a member sees it, and clicks in it."""

    def __init__(self, bot: BotProcess, slack: FakeSlack) -> None:
        self.bot = bot
        self.slack = slack
        self.clicks = 0

    def page(self) -> dict[str, Any]:
        return self.slack.messages(ALERTS)[0]

    def thread(self) -> list[str]:
        return [m["text"] for m in self.slack.messages(ALERTS)[1:] if m.get("thread_ts") == self.page()["ts"]]

    def click(self, action_id: str, user: str, option: str | None = None) -> str:
        """Click on the breach message; returns the response_url key of this click."""
        self.clicks += 1
        key = f"click-{self.clicks}"
        payload = block_action(
            self.page(),
            ALERTS,
            action_id,
            user=user,
            response_url=self.slack.response_url(key),
            option=option,
        )
        started = time.monotonic()
        response = self.bot.interaction(payload)
        assert time.monotonic() - started < 3.0
        assert response.status_code == 200, response.text
        return key

    def wait_updates(self, count: int) -> None:
        self.slack.wait_until(lambda: self.page().get("updates", 0) >= count, 20, f"update #{count}")


def test_a_breach_is_posted_then_acknowledged_silenced_and_unsilenced_with_buttons(
    start_bot: BotFactory, slack: FakeSlack, store: Store
) -> None:
    bot = start_bot(catalogue())
    posted = slack.wait_calls("chat.postMessage", 1)[0]
    channel = Channel(bot, slack)

    # the page goes to the SLO's channel, once, with what it means and the buttons
    assert posted.params["channel"] == ALERTS
    page = channel.page()
    breach = store.breaches("checkout-availability")[0]
    assert page["text"].startswith(f"🔴 PAGE: checkout-availability (checkout) · breach #{breach.id}")
    shown = _shown(page)
    assert "Acknowledge" in shown and "Silence 30m" in shown and "View SLO" in shown
    assert "99.9 % over 30d" in shown and "Burn rate" in shown and "Budget remaining" in shown
    assert page["metadata"]["event_type"] == "slo_bot_message"
    time.sleep(2.5)  # more evaluations: still one message
    assert len(slack.calls_of("chat.postMessage")) == 1

    # Acknowledge, by a member of #alerts: the same message says who; its thread says it too
    channel.click("alert_ack", RESPONDER)
    channel.wait_updates(1)
    update = slack.calls_of("chat.update")[0]
    assert (update.params["channel"], update.params["ts"]) == (ALERTS, page["ts"])
    shown = _shown(channel.page())
    assert f"Acknowledged by <@{RESPONDER}> at <!date^" in shown and "Unacknowledge" in shown
    slack.wait_until(lambda: channel.thread(), what="the thread note")
    assert channel.thread() == [f"<@{RESPONDER}> acknowledged this breach."]
    assert store.breaches("checkout-availability")[0].acknowledged_by == RESPONDER

    # Silence 30m from the select, by another member
    channel.click("alert_silence", SECOND, option="30m")
    channel.wait_updates(2)
    shown = _shown(channel.page())
    assert f"Silenced by <@{SECOND}> until" in shown and "Unsilence" in shown and "Silence 30m" not in shown
    silence = store.silences()[-1]
    assert silence.created_by == SECOND and silence.ended_at is None
    assert 29 * 60 < (silence.until - silence.created_at).total_seconds() <= 30 * 60

    # Unsilence
    channel.click("alert_unsilence", RESPONDER)
    channel.wait_updates(3)
    shown = _shown(channel.page())
    assert "Silenced by" not in shown and "Silence 30m" in shown
    assert store.silences()[-1].ended_by == RESPONDER

    # Unacknowledge: the message asks for an acknowledgement again, and the thread says who took it back
    channel.click("alert_unack", RESPONDER)
    channel.wait_updates(4)
    shown = _shown(channel.page())
    assert "Acknowledged by" not in shown and '"Acknowledge"' in shown
    slack.wait_until(lambda: len(channel.thread()) == 2, what="the second note")
    assert channel.thread()[1] == f"<@{RESPONDER}> took back the acknowledgement of this breach."

    # a stranger's click: an explanation only they see, and nothing else happens
    slack.wait_until(lambda: all(o.status != "pending" for o in store.outbox()), what="the outbox drained")
    before = store.fingerprint()
    updates_before = len(slack.calls_of("chat.update"))
    messages_before = slack.all_messages()
    for action_id, option in (("alert_ack", None), ("alert_silence", "4h")):
        key = channel.click(action_id, STRANGER, option=option)
        slack.wait_until(lambda k=key: any(r[0] == k for r in slack.responses), what="the refusal")
        refusal = next(p for k, p in slack.responses if k == key)
        assert refusal["response_type"] == "ephemeral" and refusal["replace_original"] is False
        assert "Only members of <#C0ALERTS> may do this: they respond to this SLO." in refusal["text"]
    time.sleep(1.5)
    assert len(slack.calls_of("chat.update")) == updates_before
    assert slack.all_messages() == messages_before
    assert store.fingerprint() == before

    # the dashboard link is a button too: Slack sends its click, which needs an answer
    assert channel.bot.interaction(
        block_action(channel.page(), ALERTS, "view_slo", user=STRANGER, response_url=slack.response_url("v"))
    ).is_success

    # the audit trail: every action, with its actor
    assert [b.id for b in store.breaches()] == [breach.id]  # one breach all along
    trail = [(e.event, e.actor) for e in store.breach_events() if e.breach_id == breach.id]
    assert trail == [
        ("opened", None),
        ("acknowledged", RESPONDER),
        ("silenced", SECOND),
        ("unsilenced", RESPONDER),
        ("unacknowledged", RESPONDER),
    ]
    assert len(slack.calls_of("chat.postMessage", ok_only=True)) == 3  # the breach and its two notes


def test_app_home_shows_the_slos_and_a_retried_event_acts_once(
    start_bot: BotFactory, slack: FakeSlack
) -> None:
    bot = start_bot(catalogue())
    slack.wait_calls("chat.postMessage", 1)
    event = home_opened(RESPONDER, "Ev0HOME1")
    assert bot.event(event).status_code == 200
    views = slack.wait_calls("views.publish", 1)
    assert views[0].params["user_id"] == RESPONDER
    home = json.dumps(slack.views[RESPONDER][0], ensure_ascii=False)
    assert home.index("checkout-availability") < home.index("search-latency")
    assert "All SLOs" in home

    # Slack did not see our answer in time and sends the same event again: it acts once
    retry = bot.event(event, headers={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"})
    assert retry.status_code == 200
    time.sleep(1.0)
    assert len(slack.calls_of("views.publish")) == 1

    # after /slo subscribe, the Home tab narrows to the user's services; the messages tab is left alone
    assert "now gets the alerts" in bot.answer("subscribe checkout <#C0ALERTS|alerts>")["text"]
    assert bot.event(home_opened(RESPONDER, "Ev0HOME2")).status_code == 200
    slack.wait_calls("views.publish", 2)
    home = json.dumps(slack.views[RESPONDER][1], ensure_ascii=False)
    assert "checkout-availability" in home and "search-latency" not in home
    messages_tab = home_opened(RESPONDER, "Ev0HOME3")
    messages_tab["event"]["tab"] = "messages"
    assert bot.event(messages_tab).status_code == 200
    time.sleep(0.5)
    assert len(slack.calls_of("views.publish")) == 2
