"""OpenSLO documents the fault tests apply: a Prometheus-compatible DataSource and a 99.9 %, 30-day
ratio SLO reading it. Each returns YAML text to join with `---`."""

from __future__ import annotations


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


def catalogue(*documents: str) -> str:
    return "\n---\n".join(documents)
