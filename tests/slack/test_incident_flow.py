"""From a breach in a real Prometheus to PagerDuty and back: the trigger, the Slack click, the
upstream acknowledge, PagerDuty's signed webhook, the Slack update; and Declare incident on a lesser
breach. `slo-bot run` as a process, Slack and PagerDuty as local fakes."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import httpx

from bot.incidents.inbound import pagerduty_signature
from tests.fakeincidents import FakeIncidents
from tests.fakeslack import FakeSlack
from tests.promharness import History
from tests.promtext import sample
from tests.slack.conftest import BotFactory
from tests.slack.harness import ALERTS, RESPONDER, Store, block_action, wait_for

SECRET = "pd-webhook-secret-for-tests"
PAGE = "🔴 PAGE: api-availability (api) · breach #"
WARNING = "🟠 TICKET: api-errors (api) · breach #"  # `severity: warning` acts as a ticket

CATALOGUE = """
apiVersion: openslo/v1
kind: DataSource
metadata: {{name: prom}}
spec:
  type: Prometheus
  connectionDetails: {{url: "{url}", timeout: 5s}}
---
apiVersion: openslo/v1
kind: AlertNotificationTarget
metadata:
  name: pd-api
  annotations: {{slo-bot/routing-key: "${{PD_ROUTING_KEY}}", slo-bot/url: "{pd_url}"}}
spec: {{target: pagerduty, description: the API on-call rotation}}
---
apiVersion: openslo/v1
kind: AlertPolicy
metadata: {{name: api-page}}
spec:
  conditions:
    - kind: AlertCondition
      metadata: {{name: api-fast-burn}}
      spec:
        severity: page
        condition: {{kind: burnrate, op: gt, threshold: 2, lookbackWindow: 1h, alertAfter: 0m}}
  notificationTargets: [{{targetRef: pd-api}}]
---
apiVersion: openslo/v1
kind: AlertPolicy
metadata: {{name: api-warning}}
spec:
  conditions:
    - kind: AlertCondition
      metadata: {{name: api-some-burn}}
      spec:
        severity: warning
        condition: {{kind: burnrate, op: gt, threshold: 0.5, lookbackWindow: 1h, alertAfter: 0m}}
---
apiVersion: openslo/v1
kind: SLO
metadata:
  name: api-availability
  annotations: {{slo-bot/channel: {channel}}}
spec:
  service: api
  indicator:
    metadata: {{name: api-requests}}
    spec:
      ratioMetric:
        counter: true
        good: {{metricSource: {{metricSourceRef: prom, spec: {{query: '{good}'}}}}}}
        total: {{metricSource: {{metricSourceRef: prom, spec: {{query: '{total}'}}}}}}
  timeWindow: [{{duration: 30d, isRolling: true}}]
  budgetingMethod: Occurrences
  objectives: [{{target: 0.999}}]
  alertPolicies: [{{alertPolicyRef: api-page}}]
---
# the same requests under a ticket-level policy only (a firing page would hold an SLO's ticket back);
# its pages would go to PagerDuty, so it may declare an incident
apiVersion: openslo/v1
kind: SLO
metadata:
  name: api-errors
  annotations: {{slo-bot/channel: {channel}, slo-bot/incident-targets: pd-api}}
spec:
  service: api
  indicator:
    metadata: {{name: api-requests-too}}
    spec:
      ratioMetric:
        counter: true
        good: {{metricSource: {{metricSourceRef: prom, spec: {{query: '{good}'}}}}}}
        total: {{metricSource: {{metricSourceRef: prom, spec: {{query: '{total}'}}}}}}
  timeWindow: [{{duration: 30d, isRolling: true}}]
  budgetingMethod: Occurrences
  objectives: [{{target: 0.999}}]
  alertPolicies: [{{alertPolicyRef: api-warning}}]
"""


def _shown(message: dict[str, Any]) -> str:
    return json.dumps(message.get("attachments"), ensure_ascii=False)


def _find(slack: FakeSlack, title: str) -> dict[str, Any] | None:
    """The breach message whose text starts with `title` (not a reply in a thread)."""
    for message in slack.messages(ALERTS):
        if message["text"].startswith(title) and message.get("thread_ts", message["ts"]) == message["ts"]:
            return message
    return None


def _message(slack: FakeSlack, title: str) -> dict[str, Any]:
    found = _find(slack, title)
    assert found is not None, f"no message {title!r}"
    return found


def _shows(slack: FakeSlack, title: str, text: str) -> bool:
    found = _find(slack, title)
    return found is not None and text in _shown(found)


def _thread(slack: FakeSlack, parent: dict[str, Any]) -> list[str]:
    return [
        m["text"]
        for m in slack.messages(ALERTS)
        if m.get("thread_ts") == parent["ts"] and m["ts"] != parent["ts"]
    ]


def _dedup_key(store: Store, slo: str) -> str:
    """The incident tools' key of the SLO's one breach: one incident per breach."""
    breaches = store.breaches(slo)
    assert len(breaches) == 1, breaches
    return f"slo-bot/{slo}/{breaches[0].id}"


def _webhook(
    bot_url: str, event_type: str, event_id: str, incident_key: str, secret: str = SECRET
) -> httpx.Response:
    body = json.dumps(
        {
            "event": {
                "id": event_id,
                "event_type": event_type,
                "resource_type": "incident",
                "occurred_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
                "agent": {"id": "PJANE01", "type": "user_reference", "summary": "Jane Doe"},
                "client": None,
                "data": {
                    "id": "Q2W3E4R",
                    "type": "incident",
                    "html_url": "https://acme.pagerduty.com/incidents/Q2W3E4R",
                    "number": 77,
                    "status": event_type.removeprefix("incident."),
                    "incident_key": incident_key,
                    "title": "PAGE: api-availability (api)",
                },
            }
        }
    ).encode()
    headers = {"Content-Type": "application/json", "X-PagerDuty-Signature": pagerduty_signature(secret, body)}
    return httpx.post(f"{bot_url}/webhooks/pagerduty", content=body, headers=headers, timeout=10)


def test_a_breach_reaches_pagerduty_and_both_stay_in_step(
    live_prometheus: tuple[str, History], start_bot: BotFactory, slack: FakeSlack, store: Store
) -> None:
    url, history = live_prometheus
    with FakeIncidents() as pagerduty:
        text = CATALOGUE.format(
            url=url,
            pd_url=pagerduty.pagerduty_url,
            channel=ALERTS,
            good=history.good_selector,
            total=history.total_selector,
        )
        env = {"PD_ROUTING_KEY": pagerduty.routing_key, "PAGERDUTY_WEBHOOK_SECRET": SECRET}
        bot = start_bot(text, env=env)

        # the page goes to PagerDuty; its Slack message says so
        trigger = pagerduty.wait_calls("pagerduty", 1, timeout=60)[0]
        page_key = _dedup_key(store, "api-availability")
        assert trigger.status == 202 and trigger.json["dedup_key"] == page_key
        assert trigger.json["payload"]["severity"] == "critical"
        slack.wait_until(
            lambda: _shows(slack, PAGE, "PagerDuty `pd-api`: open"),
            30,
            "the incident line",
        )
        page = _message(slack, PAGE)
        slack.wait_until(lambda: _find(slack, WARNING), 30, "the warning's message")
        warning = _message(slack, WARNING)
        warning_key = _dedup_key(store, "api-errors")
        assert warning["text"].startswith(WARNING + warning_key.rsplit("/", 1)[1])
        assert page["text"].startswith(PAGE + page_key.rsplit("/", 1)[1])
        assert pagerduty.incident("pagerduty", warning_key) is None  # no target on the warning's policy

        # Acknowledge in Slack: PagerDuty follows
        bot.interaction(
            block_action(page, ALERTS, "alert_ack", user=RESPONDER, response_url=slack.response_url("a"))
        )
        pagerduty.wait_calls("pagerduty", 2, timeout=30)
        acked = pagerduty.incident("pagerduty", page_key)
        assert acked is not None and acked.status == "acknowledged"

        # PagerDuty says it is resolved there: Slack shows who did it, and where
        assert _webhook(bot.url, "incident.resolved", "01EVENTRESOLVED", page_key).status_code == 200
        slack.wait_until(
            lambda: "Resolved in PagerDuty by Jane Doe." in " ".join(_thread(slack, page)), 30, "the note"
        )
        slack.wait_until(
            lambda: _shows(slack, PAGE, "PagerDuty `pd-api`: resolved by Jane Doe"),
            30,
            "the message update",
        )
        assert "<https://acme.pagerduty.com/incidents/Q2W3E4R|#77>" in _shown(_message(slack, PAGE))

        # a forged webhook and a replayed one change nothing (once the resolution's chart is out)
        drained = lambda: all(o.status != "pending" for o in store.outbox())  # noqa: E731
        slack.wait_until(drained, what="the outbox drained")
        calls = len(slack.calls)
        forged = _webhook(bot.url, "incident.unacknowledged", "01FORGED", page_key, secret="guess")
        assert forged.status_code == 401
        replay = _webhook(bot.url, "incident.resolved", "01EVENTRESOLVED", page_key)
        assert replay.status_code == 200 and "already handled" in replay.text
        time.sleep(1.5)
        assert len(slack.calls) == calls
        assert [b.acknowledged_by for b in store.breaches("api-availability")] == [RESPONDER]
        metrics = bot.http.get("/metrics").text
        assert sample(metrics, "slo_bot_webhooks_total", path="/webhooks/pagerduty", status="401") == 1
        assert sample(metrics, "slo_bot_incident_calls_total", outcome="ok") == 2

        # Declare incident on the warning: opened in PagerDuty now, as a page, and said in its thread
        assert "Declare incident" in _shown(warning)
        bot.interaction(
            block_action(
                warning, ALERTS, "alert_declare", user=RESPONDER, response_url=slack.response_url("d")
            )
        )
        wait_for(lambda: pagerduty.incident("pagerduty", warning_key), 30, "the declared incident")
        declared = pagerduty.incident("pagerduty", warning_key)
        assert declared is not None and declared.severity == "critical"
        slack.wait_until(
            lambda: any("Incident opened in PagerDuty (`pd-api`)" in n for n in _thread(slack, warning)),
            30,
            "the declared incident's note",
        )
        assert any(f"<@{RESPONDER}> declared an incident" in n for n in _thread(slack, warning))
        assert pagerduty.out_of_order == []
        assert bot.stop() == 0  # SIGTERM: a clean stop, its workers shut down
