"""Slack gets its answer first: with a Slack that takes 5 s to say who is in a channel, every click
and every `/slo` command still gets its HTTP 200 within a second; the outcome (the message updated,
a refusal, the command's answer) follows at the response_url or through `chat.update`.

Through the real `/slack/events` endpoint of `slo-bot run`, with signed requests, against the fake Slack.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from slack_sdk import WebClient
from sqlalchemy import create_engine
from sqlmodel import Session, col, select

from bot.conversation import Conversation
from bot.slack.commands import handle_slo_command
from bot.slack.deps import SlackDeps
from bot.slack.notify import SlackDestination
from bot.slack.permissions import Responders
from bot.store.models import BreachRecord, SLORecord
from tests.fakeslack import FakeSlack
from tests.slack.conftest import BotFactory
from tests.slack.harness import ALERTS, RESPONDER, SECOND, STRANGER, Store, block_action, catalogue

SLOW = 5.0  # seconds Slack takes to answer conversations.members
ACK = 1.0  # the most an acknowledgement may take (Slack's own limit is 3 s)


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


def test_a_click_is_acknowledged_at_once_and_its_outcome_follows(
    start_bot: BotFactory, slack: FakeSlack, store: Store
) -> None:
    bot = start_bot(catalogue())
    slack.wait_calls("chat.postMessage", 1)
    page = slack.messages(ALERTS)[0]
    slack.delay("conversations.members", SLOW)

    clicked: dict[str, float] = {}
    for user in (STRANGER, RESPONDER):  # the second click comes before the first one's check is back
        payload = block_action(page, ALERTS, "alert_ack", user=user, response_url=slack.response_url(user))
        started = time.monotonic()
        response = bot.interaction(payload)
        took = time.monotonic() - started
        assert response.status_code == 200, response.text
        assert took < ACK, f"the click of {user} was answered after {took:.2f} s"
        clicked[user] = started

    # afterwards: the stranger is told why not, only they see it; the message says who acknowledged
    refusal = slack.wait_response(STRANGER, timeout=SLOW + 10)
    assert refusal["response_type"] == "ephemeral" and refusal["replace_original"] is False
    assert "Only members of <#C0ALERTS> may do this: they respond to this SLO." in refusal["text"]
    refused_at = next(c.at for c in slack.calls_of("response_url") if c.path.endswith(STRANGER))
    assert refused_at - clicked[STRANGER] >= SLOW - 0.5  # it did wait for Slack: after the ack
    update = slack.wait_calls("chat.update", 1, timeout=SLOW + 20)[0]
    assert update.params["ts"] == page["ts"] and update.at - clicked[RESPONDER] >= SLOW - 0.5
    assert f"Acknowledged by <@{RESPONDER}>" in json.dumps(slack.messages(ALERTS)[0])
    assert _breach(store).acknowledged_by == RESPONDER


def test_every_command_is_acknowledged_at_once_and_answered_at_its_response_url(
    start_bot: BotFactory, slack: FakeSlack, store: Store
) -> None:
    bot = start_bot(catalogue())
    slack.wait_calls("chat.postMessage", 1)
    slack.delay("conversations.members", SLOW)

    sent: list[tuple[str, float]] = []
    for text, user, channel in (
        ("ack checkout-availability", RESPONDER, ALERTS),  # asks Slack who is in #alerts
        ("silence search-latency 30m deploy", SECOND, "C0SEARCH"),  # asks who is in #search
        ("status", RESPONDER, ALERTS),
        ("help", RESPONDER, ALERTS),
    ):
        started = time.monotonic()
        response = bot.command(text, user=user, channel=channel)
        took = time.monotonic() - started
        assert response.status_code == 200 and not response.content, response.text
        assert took < ACK, f"/slo {text} was acknowledged after {took:.2f} s"
        sent.append((f"command-{len(sent) + 1}", started))

    answers = {key: slack.wait_response(key, timeout=SLOW + 10) for key, _ in sent}
    assert all(a["response_type"] == "ephemeral" for a in answers.values())
    acked, silenced, status, helped = (answers[key]["text"] for key, _ in sent)
    breach = _breach(store)
    assert f"Acknowledged breach #{breach.id} (PAGE) of `checkout-availability`." in acked
    assert "`search-latency` is silenced for 30m" in silenced
    assert "checkout-availability" in json.dumps(answers["command-3"]) and "SLO status" in status
    assert "/slo silence SLO DURATION [reason]" in helped
    arrived = {c.path.rsplit("/", 1)[-1]: c.at for c in slack.calls_of("response_url")}
    for key, started in sent[:2]:  # the ones that needed Slack: answered after it, not before the ack
        assert arrived[key] - started >= SLOW - 0.5, key
    assert _breach(store).acknowledged_by == RESPONDER
    assert store.silences()[-1].created_by == SECOND


def test_a_command_that_fails_inside_is_said_not_swallowed(tmp_path: Path) -> None:
    """After the ack, Slack shows no error of its own: a failure must reach the person as words."""
    engine = create_engine(f"sqlite:///{tmp_path / 'gone' / 'slo-bot.db'}")  # its directory is missing
    deps = SlackDeps(
        engine=engine,
        clock=lambda: datetime.now(UTC),
        responders=Responders(WebClient(token="xoxb-unused")),
        wake_delivery=lambda: None,
        conversation=Conversation([SlackDestination(None)]),
    )
    acks: list[dict[str, Any]] = []
    answers: list[dict[str, Any]] = []
    command = {"user_id": RESPONDER, "channel_id": ALERTS, "text": "status"}
    handle_slo_command(deps, lambda **kw: acks.append(kw), command, lambda **kw: answers.append(kw))
    assert acks == [{}]  # acknowledged first, with nothing to show
    assert len(answers) == 1 and answers[0]["response_type"] == "ephemeral"
    assert "could not do this just now" in answers[0]["text"]
    engine.dispose()
