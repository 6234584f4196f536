"""Every request to `/slack/events` is verified: Slack's signature and a 5-minute timestamp window.
A bad one gets 401 and changes nothing, in the database or in Slack."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
from slack_bolt import BoltRequest
from slack_sdk.signature import Clock

from bot.conversation import Conversation
from bot.service import build_slack
from bot.settings import Settings
from bot.slack.notify import SlackDestination
from bot.store import db
from tests.fakeslack import FakeSlack
from tests.slack.conftest import BotFactory
from tests.slack.harness import (
    ALERTS,
    RESPONDER,
    SECRET,
    Store,
    block_action,
    catalogue,
    home_opened,
    signature,
    signed_headers,
)

PAYLOADS = Path(__file__).resolve().parent / "payloads"


def _vector() -> tuple[str, dict[str, Any]]:
    headers = json.loads((PAYLOADS / "slash_command_signed_slack_docs_vector.headers.json").read_text())
    body = (PAYLOADS / headers["body_file"]).read_text().rstrip("\n")
    return body, headers


def test_slacks_signature_test_vector_is_accepted_and_a_changed_byte_is_not(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, slack: FakeSlack
) -> None:
    body, vector = _vector()
    # the helper the other tests sign with computes Slack's documented signature
    assert (
        signature(vector["signing_secret"], vector["x-slack-request-timestamp"], body)
        == (vector["x-slack-signature"])
    )
    # the Bolt app `slo-bot run` builds accepts it (at the time it was made) ...
    monkeypatch.setattr(Clock, "now", lambda self: float(vector["x-slack-request-timestamp"]) + 10)
    engine = db.make_engine(f"sqlite:///{tmp_path / 'vector.db'}")
    settings = Settings(
        slack_bot_token="xoxb-test",
        slack_signing_secret=vector["signing_secret"],
        slack_api_url=slack.api_url,
    )
    app, _ = build_slack(settings, engine, Conversation([SlackDestination(None)]))
    headers = {
        "x-slack-request-timestamp": vector["x-slack-request-timestamp"],
        "x-slack-signature": vector["x-slack-signature"],
        "content-type": "application/x-www-form-urlencoded",
    }
    accepted = app.dispatch(BoltRequest(body=body, headers=headers))
    assert accepted.status == 404  # verified; `/webhook-collect` is simply not ours
    # ... and refuses it with one byte changed, or 6 minutes later
    assert (
        app.dispatch(BoltRequest(body=body.replace("roadrunner", "roadrunnes"), headers=headers)).status
        == 401
    )
    monkeypatch.setattr(Clock, "now", lambda self: float(vector["x-slack-request-timestamp"]) + 360)
    assert app.dispatch(BoltRequest(body=body, headers=headers)).status == 401
    engine.dispose()


def test_forged_stale_or_unsigned_requests_get_401_and_change_nothing(
    start_bot: BotFactory, slack: FakeSlack, store: Store
) -> None:
    bot = start_bot(catalogue())
    slack.wait_calls("chat.postMessage", 1)
    page = slack.messages(ALERTS)[0]
    # and the rest of what the breach sends (its chart, in its thread): nothing moves meanwhile
    slack.wait_until(lambda: all(o.status != "pending" for o in store.outbox()), what="the outbox drained")
    time.sleep(0.5)
    calls_before = len(slack.calls)
    before = store.fingerprint()

    ack = bot.command_body("ack checkout-availability")
    click = "payload=" + json.dumps(
        block_action(page, ALERTS, "alert_ack", user=RESPONDER, response_url=slack.response_url("forged"))
    )
    event = json.dumps(home_opened(RESPONDER, "Ev0FORGED"))
    form, js = "application/x-www-form-urlencoded", "application/json"
    now = int(time.time())
    stale = now - 6 * 60
    attempts = {
        "wrong secret": (ack, form, signed_headers(ack, secret="not-the-secret")),
        "stale timestamp": (ack, form, signed_headers(ack, timestamp=stale)),
        "timestamp from the future": (ack, form, signed_headers(ack, timestamp=now + 6 * 60)),
        "no signature": (ack, form, {"X-Slack-Request-Timestamp": str(now)}),
        "no timestamp": (ack, form, {"X-Slack-Signature": signed_headers(ack)["X-Slack-Signature"]}),
        "no headers": (ack, form, {}),
        "edited body": (ack.replace("ack", "ACK"), form, signed_headers(ack)),
        "forged click": (click, form, signed_headers(click, secret="not-the-secret")),
        "stale click": (click, form, signed_headers(click, timestamp=stale)),
        "forged event": (event, js, signed_headers(event, secret="x" + SECRET)),
        "unsigned event": (event, js, {}),
    }
    for name, (body, content_type, headers) in attempts.items():
        response = bot.post(body, content_type, headers)
        assert response.status_code == 401, name
    challenge = json.dumps({"token": "x", "challenge": "c-123", "type": "url_verification"})
    assert bot.post(challenge, js, signed_headers(challenge, secret="nope")).status_code == 401
    time.sleep(1.0)
    assert store.fingerprint() == before
    assert len(slack.calls) == calls_before, [c.method for c in slack.calls[calls_before:]]
    assert not slack.responses

    # the same requests, signed properly, do act: the refusals above were the signature's doing
    assert bot.post(challenge, js, signed_headers(challenge)).json() == {"challenge": "c-123"}
    assert bot.post(ack, form, signed_headers(ack)).status_code == 200
    key = parse_qs(ack)["response_url"][0].rsplit("/", 1)[-1]
    answer = slack.wait_response(key)["text"]
    breach = store.breaches("checkout-availability")[0]
    assert answer == f"Acknowledged breach #{breach.id} (PAGE) of `checkout-availability`."
    assert breach.acknowledged_by == RESPONDER
    assert bot.post(event, js, signed_headers(event)).status_code == 200
    slack.wait_calls("views.publish", 1)
