"""OpenSLO documents the tests apply: a Prometheus-compatible DataSource, a 99.9 %, 30-day ratio SLO
reading it, and burn-rate alert policies. Each returns YAML text to join with `---`."""

from __future__ import annotations

from collections.abc import Sequence


def datasource(name: str, url: str, *, kind: str = "Prometheus", extra: str = "") -> str:
    """`extra`: more connectionDetails in flow style, e.g. `caFile: "/ca.pem"`."""
    details = f'url: "{url}", timeout: 20s' + (f", {extra}" if extra else "")
    return f"""
apiVersion: openslo/v1
kind: DataSource
metadata: {{name: {name}}}
spec:
  type: {kind}
  connectionDetails: {{{details}}}
"""


def ratio_slo(
    name: str, source: str, good: str, total: str, *, counter: bool = True, annotations: str = ""
) -> str:
    """`annotations`: a flow mapping's inside, e.g. `"slo-bot/min-bad-events": "3"`."""
    return f"""
apiVersion: openslo/v1
kind: SLO
metadata:
  name: {name}
  annotations: {{{annotations}}}
spec:
  service: api
  indicator:
    metadata: {{name: {name}-requests}}
    spec:
      ratioMetric:
        counter: {"true" if counter else "false"}
        good:
          metricSource:
            metricSourceRef: {source}
            spec: {{query: '{good}'}}
        total:
          metricSource:
            metricSourceRef: {source}
            spec: {{query: '{total}'}}
  timeWindow: [{{duration: 30d, isRolling: true}}]
  budgetingMethod: Occurrences
  objectives: [{{target: 0.999}}]
"""


def burn_policy(
    name: str, severity: str, threshold: float, lookback: str, targets: Sequence[str] = ()
) -> str:
    """An AlertPolicy of one burn-rate condition (short window = lookback / 12), sent to `targets`."""
    refs = ", ".join(f"{{targetRef: {t}}}" for t in targets)
    condition = (
        f"kind: burnrate, op: gt, threshold: {threshold:g}, lookbackWindow: {lookback}, alertAfter: 0m"
    )
    return f"""
apiVersion: openslo/v1
kind: AlertPolicy
metadata: {{name: {name}}}
spec:
  conditions:
    - kind: AlertCondition
      metadata: {{name: {name}-burn}}
      spec:
        severity: {severity}
        condition: {{{condition}}}
  notificationTargets: [{refs}]
"""


def page_and_ticket_policies(targets: Sequence[str]) -> str:
    """`pages` (14.4x over 1h and 5m) and `tickets` (3x over 2h and 10m), each led by `---`."""
    return "".join(
        "---" + burn_policy(*p, targets)
        for p in (("pages", "page", 14.4, "1h"), ("tickets", "ticket", 3, "2h"))
    )


def catalogue(*documents: str) -> str:
    return "\n---\n".join(documents)
