"""Only responders act: `/slo subscribe` does not widen who may acknowledge, silence or unsilence.

Through the real `/slack/events` endpoint of `slo-bot run`, with signed requests; the fake Slack's
`conversations.members` decides who is in which channel.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sqlmodel import Session, col, select

from bot.store import slack as slack_store
from bot.store.models import BreachRecord, SLORecord
from tests.fakeslack import FakeSlack
from tests.faults.answers import answer
from tests.slack.conftest import BotFactory
from tests.slack.harness import ALERTS, RESPONDER, STRANGER, BotProcess, Store, block_action, catalogue

MINE = "C0STRANGERS"  # a channel of the stranger's own


def _breach(store: Store, slo: str = "checkout-availability") -> BreachRecord:
    """The SLO's one breach: what its message shows and one acknowledgement acknowledges."""
    with Session(store.engine) as session:
        found = list(
            session.exec(
                select(BreachRecord)
                .join(SLORecord, col(SLORecord.id) == BreachRecord.slo_id)
                .where(SLORecord.name == slo)
            )
        )
    assert len(found) == 1, found
    return found[0]


def _answer(bot: BotProcess, text: str, user: str, channel: str = ALERTS) -> str:
    return str(answer(bot, text, user=user, channel=channel)["text"])


def test_a_stranger_cannot_subscribe_their_channel_to_gain_the_right_to_silence(
    start_bot: BotFactory, slack: FakeSlack, store: Store
) -> None:
    slack.add_channel(MINE, "mine", [STRANGER])
    bot = start_bot(catalogue())
    slack.wait_calls("chat.postMessage", 1)

    subscribed = _answer(bot, f"subscribe checkout <#{MINE}|mine>", STRANGER, channel=MINE)
    assert "now gets the alerts" not in subscribed
    assert f"Only members of <#{ALERTS}>" in subscribed
    assert _answer(bot, "subscribe checkout", STRANGER, channel=MINE).startswith("Only members")
    silenced = _answer(bot, "silence checkout-availability 7d", STRANGER, channel=MINE)
    assert "is silenced" not in silenced and f"Only members of <#{ALERTS}>" in silenced
    assert "Only members" in _answer(bot, "unsilence checkout-availability", STRANGER, channel=MINE)
    assert "Only members" in _answer(bot, "ack checkout-availability", STRANGER, channel=MINE)
    assert store.silences() == []
    with Session(store.engine) as session:
        assert slack_store.subscribed_channels(session=session, service="checkout") == []
    assert _breach(store).acknowledged_by is None

    # a responder may subscribe any channel of theirs: its members see the alerts, and still may not act
    assert _answer(bot, f"subscribe checkout <#{MINE}|mine>", RESPONDER).endswith(
        "now gets the alerts of `checkout`."
    )
    assert "Only members" in _answer(bot, "silence checkout-availability 7d", STRANGER, channel=MINE)
    assert store.silences() == []


def test_members_of_a_subscribed_channel_see_the_breach_but_cannot_click_it_away(
    start_bot: BotFactory, slack: FakeSlack, store: Store
) -> None:
    slack.add_channel(MINE, "mine", [STRANGER])
    with Session(store.engine) as session:  # subscribed (by a responder) before the breach opens
        slack_store.subscribe(
            session=session, service="checkout", channel=MINE, by=RESPONDER, now=datetime.now(UTC)
        )
        session.commit()
    bot = start_bot(catalogue())
    slack.wait_until(lambda: slack.messages(MINE) and slack.messages(ALERTS), what="both posts")
    posted = slack.messages(MINE)[0]
    for action, option in (("alert_ack", None), ("alert_silence", "24h")):
        url = slack.response_url(action)
        click = block_action(posted, MINE, action, user=STRANGER, response_url=url, option=option)
        assert bot.interaction(click).status_code == 200
    slack.wait_until(lambda: len(slack.responses) >= 2, what="the two refusals")
    assert all("Only members of" in json.dumps(r) for _, r in slack.responses), slack.responses
    assert _breach(store).acknowledged_by is None
    assert store.silences() == []
