"""Socket Mode: with SLACK_APP_TOKEN set, the bot opens Slack's WebSocket and answers `/slo` over it."""

from __future__ import annotations

import json
from pathlib import Path

from tests.fakeslack import FakeSlack
from tests.fakesocket import FakeSocketMode
from tests.slack.conftest import BotFactory

PAYLOADS = Path(__file__).resolve().parent / "payloads"


def _envelope() -> dict:
    """Slack's documented slash-command envelope, carrying `/slo help`."""
    envelope = json.loads((PAYLOADS / "socket_mode_slash_commands_envelope_slack_docs.json").read_text())
    envelope["payload"]["command"] = "/slo"
    envelope["payload"]["text"] = "help"
    return envelope


def test_socket_mode_answers_slash_commands_over_the_websocket(
    slack: FakeSlack, start_bot: BotFactory
) -> None:
    with FakeSocketMode() as socket_mode:
        slack.socket_url = socket_mode.url
        bot = start_bot(env={"SLACK_APP_TOKEN": slack.app_token, "SLACK_SIGNING_SECRET": ""})
        socket_mode.wait_connected()
        envelope = _envelope()
        envelope["payload"]["response_url"] = slack.response_url("socket")
        socket_mode.send(envelope)
        socket_mode.wait_for(envelope["envelope_id"])  # acknowledged over the socket at once ...
        answer = slack.wait_response("socket")  # ... and answered at the response_url
        assert answer["response_type"] == "ephemeral"
        assert "/slo status" in answer["text"]
        # in Socket Mode there is no /slack/events endpoint; health and metrics are still served
        assert bot.http.post("/slack/events", content=b"x").status_code == 404
        assert bot.http.get("/healthz").status_code == 200
        bot.stop()
