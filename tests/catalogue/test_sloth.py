"""Sloth specs, plain and as the Kubernetes CRD, become OpenSLO SLOs on a `prometheus` DataSource."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from bot.catalogue import build_slos, load_paths
from bot.domain import BudgetingMethod, IndicatorKind
from tests.catalogue.helpers import EXAMPLES, lines

CRD = """\
apiVersion: sloth.slok.dev/v1
kind: PrometheusServiceLevel
metadata:
  name: payments
  namespace: monitoring
spec:
  service: payments
  labels:
    team: money
  slos:
    - name: requests-availability
      objective: 99.5
      description: Payment API availability.
      sli:
        events:
          errorQuery: sum(rate(http_requests_total{job="payments",code=~"5.."}[{{.window}}]))
          totalQuery: sum(rate(http_requests_total{job="payments"}[{{.window}}]))
      alerting:
        name: PaymentsAvailability
        pageAlert:
          labels: {severity: critical}
    - name: settlement
      objective: 99
      sli:
        raw:
          errorRatioQuery: settlement:error_ratio:rate{{.window}}
"""


def test_plain_sloth_file(tmp_path: Path) -> None:
    catalogue = load_paths([EXAMPLES / "sloth.yaml"], {})
    assert catalogue.problems == ()
    by_name = {e.slo.name: e for e in catalogue.entries}
    assert sorted(by_name) == ["myservice-jobs-success", "myservice-requests-availability"]
    availability = by_name["myservice-requests-availability"].slo
    assert availability.service == "myservice"
    assert availability.objective.target_ratio == 0.999
    assert availability.window.duration == timedelta(days=30) and availability.window.is_rolling
    assert availability.budgeting_method is BudgetingMethod.OCCURRENCES
    assert availability.labels == {"owner": "myteam", "tier": "2", "category": "availability"}
    indicator = availability.indicator
    assert indicator.kind is IndicatorKind.RATIO and indicator.counter
    assert indicator.bad is not None and indicator.total is not None and indicator.good is None
    assert indicator.bad.query.endswith('code=~"(5..|429)"}[{{.window}}]))')
    assert indicator.bad.source.name == "prometheus"
    assert indicator.bad.source.connection == {"url": "http://127.0.0.1:9090"}
    jobs = by_name["myservice-jobs-success"].slo.indicator
    assert jobs.kind is IndicatorKind.RAW and jobs.raw_type == "failure"
    assert jobs.raw is not None and jobs.raw.query == 'job:errors:ratio_rate{{.window}}{job="worker"}'


def test_stored_sloth_documents_are_openslo() -> None:
    catalogue = load_paths([EXAMPLES / "sloth.yaml"], {})
    entry = catalogue.entries[0]
    assert [(d["apiVersion"], d["kind"]) for d in entry.documents] == [
        ("openslo/v1", "SLO"),
        ("openslo/v1", "DataSource"),
    ]
    assert build_slos(json.loads(json.dumps(entry.documents)), {}) == [entry.slo]


def test_prometheus_url_comes_from_the_environment_at_load_time() -> None:
    env = {"SLO_BOT_PROMETHEUS_URL": "http://prom.internal:9090"}
    entry = load_paths([EXAMPLES / "sloth.yaml"], env).entries[0]
    assert entry.slo.indicator.total is not None
    assert entry.slo.indicator.total.source.connection == {"url": "http://prom.internal:9090"}
    assert entry.documents[1]["spec"]["connectionDetails"] == {"url": "http://prom.internal:9090"}
    assert build_slos(entry.documents, {}) == [entry.slo]  # the URL is written into the document


def test_kubernetes_crd_form(tmp_path: Path) -> None:
    file = tmp_path / "crd.yaml"
    file.write_text(CRD)
    catalogue = load_paths([file], {})
    assert catalogue.problems == ()
    first, second = (e.slo for e in catalogue.entries)
    assert first.name == "payments-requests-availability"
    assert first.objective.target_ratio == 0.995
    assert first.description == "Payment API availability."
    assert first.labels == {"team": "money"}
    assert first.indicator.bad is not None
    assert first.indicator.bad.query.startswith('sum(rate(http_requests_total{job="payments",code=~"5.."}')
    assert second.name == "payments-settlement"
    assert second.indicator.raw is not None and second.indicator.raw_type == "failure"


def test_a_catalogue_prometheus_datasource_is_used(tmp_path: Path) -> None:
    (tmp_path / "crd.yaml").write_text(CRD)
    (tmp_path / "prom.yaml").write_text(
        "apiVersion: openslo/v1\nkind: DataSource\nmetadata: {name: prometheus}\n"
        "spec: {type: Thanos, connectionDetails: {url: 'http://thanos:10902'}}\n"
    )
    catalogue = load_paths([tmp_path], {})
    assert catalogue.problems == ()
    queries = [e.slo.indicator.raw or e.slo.indicator.bad for e in catalogue.entries]
    assert [(q.source.type, q.source.connection["url"]) for q in queries if q] == [
        ("Thanos", "http://thanos:10902")
    ] * 2


PLAIN = 'version: "prometheus/v1"\nservice: svc\nslos:\n'
EVENTS = "    sli:\n      events:\n        error_query: e\n        total_query: t\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('version: "prometheus/v2"\nservice: svc\nslos: []\n', ":1: version: unsupported Sloth version"),
        (PLAIN + "  - name: a\n    objective: 100\n" + EVENTS, ":5: slos[0].objective: objective is a"),
        (PLAIN + "  - name: a\n    objective: 0\n" + EVENTS, ":5: slos[0].objective: objective is a"),
        (PLAIN + "  - objective: 99\n" + EVENTS, ":4: slos[0].name: required field missing"),
        (
            PLAIN + "  - name: Big_One\n    objective: 99\n" + EVENTS,
            ":4: slos[0].name: invalid name 'svc-Big_One'",
        ),
        (
            PLAIN + "  - name: a\n    objective: 99\n    sli:\n      events:\n        error_query: e\n",
            ":7: slos[0].sli.events.total_query: required field missing",
        ),
        (
            PLAIN + "  - name: a\n    objective: 99\n    sli:\n      events:\n        error_querry: e\n"
            "        total_query: t\n",
            ":8: slos[0].sli.events.error_querry: unknown field (did you mean 'error_query'?)",
        ),
        (
            PLAIN + "  - name: a\n    objective: 99\n    sli:\n      raw: {error_ratio_query: r}\n"
            "      events: {error_query: e, total_query: t}\n",
            ":6: slos[0].sli: give exactly one of events or raw",
        ),
        (
            PLAIN + "  - name: a\n    objective: 99\n    sli:\n      plugin: {id: x}\n",
            ":7: slos[0].sli.plugin: Sloth SLI plugins are not supported",
        ),
        (
            PLAIN + "  - name: a\n    objective: 99\n    sli:\n      events:\n        error_query: e${NOPE}\n"
            "        total_query: t\n",
            ":8: slos[0].sli.events.error_query: environment variable NOPE is not set",
        ),
        (
            PLAIN + "  - name: a\n    objective: 99\n" + EVENTS + "  - name: a\n    objective: 9\n" + EVENTS,
            ":10: slos[1].name: duplicate SLO name 'svc-a'",
        ),
        ("version: prometheus/v1\nslos: []\n", ":1: service: required field missing"),
        ("apiVersion: sloth.slok.dev/v1\nkind: Other\nspec: {}\n", ":2: kind: unknown Sloth kind 'Other'"),
    ],
    ids=[
        "version",
        "objective-100",
        "objective-0",
        "no-name",
        "bad-name",
        "no-total",
        "typo",
        "events-and-raw",
        "plugin",
        "unset-variable",
        "duplicate",
        "no-service",
        "crd-kind",
    ],
)
def test_sloth_problems_point_at_the_sloth_text(tmp_path: Path, text: str, expected: str) -> None:
    file = tmp_path / "sloth.yaml"
    file.write_text(text)
    catalogue = load_paths([file], {})
    assert any(p.startswith(f"{file}{expected}") for p in lines(catalogue)), lines(catalogue)
