"""Burn-down charts through Slack's upload flow against the fake Slack: both Web API calls, the file's
bytes at the upload URL, the channel and the thread; retried through failures, never shared twice."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from PIL import Image
from slack_sdk import WebClient
from sqlalchemy import Engine
from sqlmodel import Session, select

from bot.slack.delivery import SlackDelivery
from bot.slack.uploads import queue_chart
from bot.store.models import BreachRecord, OutboxRecord, SlackMessageRecord
from tests.fakeslack import FakeSlack
from tests.test_charts import NOW, stored  # noqa: F401  (the fixture: 30 days of a known history)

CHANNEL = "C0CHARTS"


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        fake.add_channel(CHANNEL, "charts")
        yield fake


def _delivery(engine: Engine, slack: FakeSlack, clock: Clock) -> SlackDelivery:
    client = WebClient(token=slack.token, base_url=slack.api_url, timeout=2, retry_handlers=[])
    return SlackDelivery(engine, client, clock=clock)  # its own client for upload URLs, as in the bot


def _entries(engine: Engine) -> list[OutboxRecord]:
    with Session(engine) as session:
        return list(session.exec(select(OutboxRecord).where(OutboxRecord.kind == "chart")))


def _deliver_until_settled(delivery: SlackDelivery, clock: Clock, engine: Engine, rounds: int = 12) -> None:
    """Deliver, moving the clock past each backoff, until no chart entry is pending."""
    for _ in range(rounds):
        delivery.paused_until = None
        delivery.deliver_due()
        if all(e.status != "pending" for e in _entries(engine)):
            return
        clock.now += timedelta(minutes=6)  # longer than any backoff
    raise AssertionError(f"still pending: {[e.last_error for e in _entries(engine)]}")


def test_slo_show_chart_goes_through_both_calls_with_its_bytes_into_the_channel(
    stored: tuple[Engine, int],  # noqa: F811
    slack: FakeSlack,
) -> None:
    engine, slo_id = stored
    clock = Clock()
    with Session(engine) as session:
        queue_chart(session, slo_id=slo_id, channel=CHANNEL, now=NOW, comment="asked for by <@U1>")
        session.commit()
    _deliver_until_settled(_delivery(engine, slack, clock), clock, engine)

    asked = slack.calls_of("files.getUploadURLExternal", ok_only=True)
    assert len(asked) == 1
    assert asked[0].params["filename"] == "checkout-availability-burn-down-20261130-1200.png"
    assert asked[0].params["alt_txt"].startswith("Burn-down chart of checkout-availability (checkout)")
    sent = slack.calls_of(FakeSlack.UPLOAD, ok_only=True)
    assert len(sent) == 1
    shared = slack.files[sent[0].params["file_id"]]
    assert shared.data is not None and len(shared.data) == int(asked[0].params["length"])
    assert Image.open(io.BytesIO(shared.data)).size == (1200, 960)  # the chart itself, whole
    done = slack.calls_of("files.completeUploadExternal", ok_only=True)
    assert len(done) == 1
    assert done[0].params["channel_id"] == CHANNEL and not done[0].params.get("thread_ts")
    assert json.loads(done[0].params["files"]) == [
        {"id": shared.id, "title": "checkout-availability: error budget burn-down"}
    ]
    [message] = slack.uploads(CHANNEL)
    assert message["text"] == "asked for by <@U1>" and "thread_ts" not in message
    assert [f["id"] for f in message["files"]] == [shared.id]
    assert not slack.calls_of("files.upload")  # the retired method is never called
    assert [e.status for e in _entries(engine)] == ["done"]


def test_a_breach_chart_goes_into_its_thread_after_its_message(
    stored: tuple[Engine, int],  # noqa: F811
    slack: FakeSlack,
) -> None:
    engine, slo_id = stored
    clock = Clock()
    client = WebClient(token=slack.token, base_url=slack.api_url)
    parent = client.chat_postMessage(channel=CHANNEL, text="PAGE: checkout-availability")
    with Session(engine) as session:
        breach = session.exec(select(BreachRecord)).one()
        session.add(SlackMessageRecord(breach_id=breach.id or 0, channel=CHANNEL, ts=str(parent["ts"])))
        queue_chart(session, slo_id=slo_id, channel=CHANNEL, now=NOW, breach_id=breach.id)
        session.commit()
    _deliver_until_settled(_delivery(engine, slack, clock), clock, engine)

    done = slack.wait_calls("files.completeUploadExternal")
    assert done[0].params["channel_id"] == CHANNEL and done[0].params["thread_ts"] == parent["ts"]
    [message] = slack.uploads(CHANNEL)
    assert message["thread_ts"] == parent["ts"]
    assert slack.messages(CHANNEL)[0]["reply_count"] == 1


def test_failures_delay_the_chart_but_never_share_it_twice(
    stored: tuple[Engine, int],  # noqa: F811
    slack: FakeSlack,
) -> None:
    engine, slo_id = stored
    clock = Clock()
    slack.fail("files.getUploadURLExternal", status=429, times=1)
    slack.fail(FakeSlack.UPLOAD, status=503, times=1)
    slack.fail("files.completeUploadExternal", status=500, times=1)
    slack.drop("files.completeUploadExternal", times=1, apply=True)  # shared, but the answer is lost
    with Session(engine) as session:
        queue_chart(session, slo_id=slo_id, channel=CHANNEL, now=NOW)
        session.commit()
    _deliver_until_settled(_delivery(engine, slack, clock), clock, engine)

    assert len(slack.uploads(CHANNEL)) == 1  # one chart, though Slack took the last call twice
    statuses = [c.status for c in slack.calls_of("files.completeUploadExternal")]
    assert statuses == [500, 0]  # the lost answer was looked for in the channel, not sent again
    assert slack.calls_of("conversations.history", ok_only=True)
    assert [e.status for e in _entries(engine)] == ["done"]


def test_a_chart_slack_refuses_is_explained_to_whoever_asked(
    stored: tuple[Engine, int],  # noqa: F811
    slack: FakeSlack,
) -> None:
    engine, slo_id = stored
    clock = Clock()
    with Session(engine) as session:
        queue_chart(
            session, slo_id=slo_id, channel="nowhere", now=NOW, response_url=slack.response_url("asker")
        )
        session.commit()
    _deliver_until_settled(_delivery(engine, slack, clock), clock, engine)

    told = slack.wait_response("asker")
    assert told["response_type"] == "ephemeral"
    assert "could not be posted in <#nowhere> (channel_not_found)" in told["text"]
    [entry] = _entries(engine)
    assert entry.status == "failed" and entry.last_error == "channel_not_found"
    assert not slack.uploads(CHANNEL)
