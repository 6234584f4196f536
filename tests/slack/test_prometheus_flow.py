"""From a breach in a real Prometheus to the Slack message, the click and the update.

A fresh history whose last minutes (up to now) are an incident, backfilled into its own Prometheus,
so `slo-bot run` evaluating "now" sees the breach live.
"""

from __future__ import annotations

import json

from tests.fakeslack import FakeSlack
from tests.promharness import History
from tests.slack.conftest import BotFactory
from tests.slack.harness import ALERTS, RESPONDER, Store, block_action

CATALOGUE = """
apiVersion: openslo/v1
kind: DataSource
metadata: {{name: prom}}
spec:
  type: Prometheus
  connectionDetails: {{url: "{url}", timeout: 5s}}
---
apiVersion: openslo/v1
kind: AlertCondition
metadata: {{name: api-fast-burn}}
spec:
  severity: page
  condition: {{kind: burnrate, op: gt, threshold: 2, lookbackWindow: 1h, alertAfter: 0m}}
---
apiVersion: openslo/v1
kind: AlertPolicy
metadata: {{name: api-page}}
spec:
  conditions: [{{conditionRef: api-fast-burn}}]
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
"""


def test_a_prometheus_breach_is_posted_then_acknowledged(
    live_prometheus: tuple[str, History], start_bot: BotFactory, slack: FakeSlack, store: Store
) -> None:
    url, history = live_prometheus
    bot = start_bot(
        CATALOGUE.format(url=url, channel=ALERTS, good=history.good_selector, total=history.total_selector)
    )
    posted = slack.wait_calls("chat.postMessage", 1, timeout=60)[0]
    assert posted.params["channel"] == ALERTS
    page = slack.messages(ALERTS)[0]
    breach = store.breaches("api-availability")[0]
    assert page["text"].startswith(f"🔴 PAGE: api-availability (api) · breach #{breach.id}")
    response = bot.interaction(
        block_action(page, ALERTS, "alert_ack", user=RESPONDER, response_url=slack.response_url("ack"))
    )
    assert response.status_code == 200
    slack.wait_until(lambda: slack.messages(ALERTS)[0].get("updates", 0) >= 1, 20, "the update")
    update = slack.calls_of("chat.update")[0]
    assert update.params["ts"] == page["ts"]
    shown = json.dumps(slack.messages(ALERTS)[0].get("attachments"), ensure_ascii=False)
    assert f"Acknowledged by <@{RESPONDER}>" in shown
    assert [b.acknowledged_by for b in store.breaches("api-availability")] == [RESPONDER]
