"""Text from outside (incident-tool names and notes, what people type) reaches Slack's mrkdwn escaped:
a PagerDuty note `<!channel> ...` shows as text and pings no one.

`slo-bot run` as a process, with PagerDuty's signed webhooks posted to it; Slack and PagerDuty are
local fakes.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlmodel import Session

from bot.incidents.inbound import pagerduty_signature
from bot.slack.blocks import escape, escape_typed, slack_user
from bot.store import repo
from bot.store.models import SnapshotRecord
from tests.fakeincidents import FakeIncidents
from tests.fakeslack import FakeSlack
from tests.faults.answers import answer
from tests.slack.conftest import BotFactory
from tests.slack.harness import ALERTS, RESPONDER, Store, catalogue

SECRET = "pd-webhook-secret-for-outside-text"
TARGET = """
---
apiVersion: openslo/v1
kind: AlertNotificationTarget
metadata:
  name: pd
  annotations: {{slo-bot/routing-key: "{key}", slo-bot/url: "{url}"}}
spec: {{target: pagerduty}}
"""
PINGS = ("<!channel>", "<!here>", "<!everyone>", "<@U0RESPONDER>", "<https://evil.example.com|")


def _with_pagerduty(pagerduty: FakeIncidents) -> str:
    text = catalogue().replace(
        f"slo-bot/channel: {ALERTS}\n", f"slo-bot/channel: {ALERTS}\n    slo-bot/incident-targets: pd\n"
    )
    return text + TARGET.format(key=pagerduty.routing_key, url=pagerduty.pagerduty_url)


def _webhook(bot_url: str, event_type: str, event_id: str, **event: Any) -> httpx.Response:
    body = json.dumps(
        {
            "event": {
                "id": event_id,
                "event_type": event_type,
                "resource_type": "incident",
                "occurred_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
                "agent": {"id": "PMAL01", "type": "user_reference", "summary": "<!here> Mallory & co"},
                "client": None,
                **event,
            }
        }
    ).encode()
    headers = {"Content-Type": "application/json", "X-PagerDuty-Signature": pagerduty_signature(SECRET, body)}
    return httpx.post(f"{bot_url}/webhooks/pagerduty", content=body, headers=headers, timeout=10)


def _incident(key: str, **extra: Any) -> dict[str, Any]:
    """PagerDuty's incident for the breach whose dedup key is `key`."""
    return {
        "id": "Q2W3E4R",
        "type": "incident",
        "html_url": "https://acme.pagerduty.com/incidents/Q2W3E4R",
        "number": 77,
        "incident_key": key,
        "title": "PAGE: checkout-availability (checkout)",
        **extra,
    }


def test_incident_tool_text_is_escaped_in_slack(start_bot: BotFactory, slack: FakeSlack) -> None:
    with FakeIncidents() as pagerduty:
        bot = start_bot(_with_pagerduty(pagerduty), env={"PAGERDUTY_WEBHOOK_SECRET": SECRET})
        key = pagerduty.wait_calls("pagerduty", 1, timeout=60)[0].json["dedup_key"]
        assert key.startswith("slo-bot/checkout-availability/")  # the breach's
        slack.wait_calls("chat.postMessage", 1)
        note = {
            "id": "PNOTE1",
            "type": "incident_note",
            "content": "<!channel> rolling back <https://evil.example.com|the fix> & <@U0RESPONDER>",
            "incident": _incident(key),
        }
        assert _webhook(bot.url, "incident.annotated", "N1", data=note).status_code == 200
        assigned = _incident(
            key, assignees=[{"id": "PX", "type": "user_reference", "summary": "<!everyone>"}]
        )
        assert _webhook(bot.url, "incident.reassigned", "N2", data=assigned).status_code == 200
        assert _webhook(bot.url, "incident.acknowledged", "N3", data=_incident(key)).status_code == 200

        def shown() -> str:
            return json.dumps(slack.messages(ALERTS), ensure_ascii=False)

        # (the breach's chart goes into its thread first: the notes follow it, in their order)
        slack.wait_until(lambda: "rolling back" in shown() and "Mallory" in shown(), what="the notes")
        slack.wait_until(lambda: "everyone" in shown(), what="the reassignment's note")
        slack.wait_until(lambda: "Acknowledged by" in shown(), what="the acknowledged message")
        text = shown()
        for ping in PINGS:
            assert ping not in text, ping
        assert "&lt;!channel&gt; rolling back" in text
        assert "&lt;!here&gt; Mallory &amp; co" in text  # who acknowledged, in the message and the thread
        assert "&lt;!everyone&gt;" in text


def test_what_people_type_is_echoed_as_text(start_bot: BotFactory, slack: FakeSlack) -> None:
    bot = start_bot(catalogue())
    slack.wait_calls("chat.postMessage", 1)

    def ask(text: str) -> str:
        return json.dumps(answer(bot, text, user=RESPONDER), ensure_ascii=False)

    # with `should_escape`, Slack sends a typed @channel as `<!channel>` and a typed `&` as `&amp;`
    assert "is silenced" in ask("silence checkout-availability 1h <!channel> rollback &amp; retry")
    shown = ask("show checkout-availability")
    assert "<!channel>" not in shown and "&lt;!channel&gt; rollback &amp; retry" in shown
    for typed in ("<!here>", "status <!here>", "show <!here>", "silence <!here> 1h", "ack <!here>"):
        assert "<!here>" not in ask(typed), typed


def test_escape_keeps_text_and_drops_control_sequences() -> None:
    assert escape("<!channel> & <https://x|y>") == "&lt;!channel&gt; &amp; &lt;https://x|y&gt;"
    assert escape_typed("&lt;b&gt; &amp; <!here>") == "&lt;b&gt; &amp; &lt;!here&gt;"
    assert slack_user("U0ANA42") == "<@U0ANA42>" and slack_user("<!here> (PagerDuty)").startswith("&lt;")


def test_a_source_error_is_shown_as_text(start_bot: BotFactory, slack: FakeSlack, store: Store) -> None:
    bot = start_bot(catalogue())
    slack.wait_calls("chat.postMessage", 1)
    # an error as a source answered it (a server quoting what it got), stored as the newest status
    with Session(store.engine) as session:
        record = repo.get_slo(session=session, name="checkout-availability")
        assert record is not None
        session.add(
            SnapshotRecord(
                slo_id=record.id or 0,
                evaluated_at=datetime.now(UTC) + timedelta(hours=1),
                burn_rates="{}",
                state="error",
                error='bad_data: unexpected "<!channel>" & <https://evil.example.com|here>',
            )
        )
        session.commit()
    shown = json.dumps(answer(bot, "show checkout-availability", user=RESPONDER), ensure_ascii=False)
    assert "<!channel>" not in shown and "<https://evil" not in shown
    assert "&lt;!channel&gt;" in shown
