"""Shared test data: a small valid catalogue that broken documents can refer to."""

from __future__ import annotations

from pathlib import Path

from bot.catalogue import Catalogue, load_paths

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
EXAMPLE_ENV = {
    "PROMETHEUS_URL": "http://prometheus.test:9090",
    # examples/datadog.yaml
    "DD_API_KEY": "dd-api-key-example",
    "DD_APP_KEY": "dd-app-key-example",
    # examples/incidents.yaml: the incident tools' secrets
    "PAGERDUTY_ROUTING_KEY": "R0UT1NGKEYR0UT1NGKEYR0UT1NGKEY01",
    "OPSGENIE_API_KEY": "opsgenie-key",
    "PAYMENTS_WEBHOOK_URL": "https://hooks.test/slo",
    "PAYMENTS_WEBHOOK_SECRET": "webhook-secret",
}

BASE = """\
apiVersion: openslo/v1
kind: DataSource
metadata: {name: demo}
spec: {type: Simulated, connectionDetails: {seed: 1}}
---
apiVersion: openslo/v1
kind: SLI
metadata: {name: requests}
spec:
  ratioMetric:
    counter: true
    good: {metricSource: {metricSourceRef: demo, spec: {query: good}}}
    total: {metricSource: {metricSourceRef: demo, spec: {query: total}}}
---
apiVersion: openslo/v1
kind: AlertCondition
metadata: {name: burn}
spec:
  severity: page
  condition: {kind: burnrate, op: gt, threshold: 14.4, lookbackWindow: 1h, alertAfter: 0m}
---
apiVersion: openslo/v1
kind: AlertNotificationTarget
metadata: {name: chat}
spec: {target: slack}
---
apiVersion: openslo/v1
kind: AlertPolicy
metadata: {name: page}
spec:
  conditions: [{conditionRef: burn}]
  notificationTargets: [{targetRef: chat}]
"""


def load_text(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> Catalogue:
    """`text` as case.yaml beside BASE as base.yaml."""
    (tmp_path / "base.yaml").write_text(BASE)
    (tmp_path / "case.yaml").write_text(text)
    return load_paths([tmp_path / "base.yaml", tmp_path / "case.yaml"], env or {})


def lines(catalogue: Catalogue) -> list[str]:
    return [str(p) for p in catalogue.problems]
