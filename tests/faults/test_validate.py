"""`slo-bot validate` refuses what `slo-bot run` would refuse, at the line that says it.

Each case runs the real command on a catalogue file and reads what a user sees: the exit code and
the `FILE:LINE: field.path: message` lines.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from bot.catalogue import load_paths
from bot.catalogue.promql import WINDOW, promql_problem
from bot.incidents.pagerduty import severity_of
from bot.policy import policy_for
from bot.routing import incident_targets
from tests.promharness import PrometheusServer

DATASOURCES = """\
apiVersion: openslo/v1
kind: DataSource
metadata: {name: prom}
spec: {type: Prometheus, connectionDetails: {url: "http://127.0.0.1:9"}}
---
apiVersion: openslo/v1
kind: DataSource
metadata: {name: demo}
spec: {type: Simulated, connectionDetails: {seed: 1}}
"""


def slo(annotations: str = "{}", good: str = "good", total: str = "total", source: str = "demo") -> str:
    return f"""\
apiVersion: openslo/v1
kind: SLO
metadata:
  name: api
  annotations: {annotations}
spec:
  service: api
  indicator:
    metadata: {{name: api}}
    spec:
      ratioMetric:
        counter: true
        good: {{metricSource: {{metricSourceRef: {source}, spec: {{query: '{good}'}}}}}}
        total: {{metricSource: {{metricSourceRef: {source}, spec: {{query: '{total}'}}}}}}
  budgetingMethod: Occurrences
  objectives: [{{target: 0.999}}]
"""


def slo_bot(tmp_path: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'slo.db'}"}
    env.pop("SLO_BOT_CONFIG", None)
    return subprocess.run(
        [sys.executable, "-m", "bot", *argv], env=env, capture_output=True, text=True, timeout=60
    )


def validate(tmp_path: Path, text: str) -> tuple[int, list[str]]:
    (tmp_path / "sources.yaml").write_text(DATASOURCES)
    (tmp_path / "case.yaml").write_text(text)
    done = slo_bot(tmp_path, "validate", str(tmp_path))
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, [line for line in done.stdout.splitlines() + done.stderr.splitlines() if line]


def problem_at(lines: list[str], tmp_path: Path, line: int, phrase: str) -> None:
    where = f"{tmp_path / 'case.yaml'}:{line}: "
    assert any(text.startswith(where) and phrase in text for text in lines), lines


@pytest.mark.parametrize(
    ("annotation", "phrase"),
    [
        ("slo-bot/min-bad-events: three", "'three' is not a number of events"),
        ("slo-bot/min-bad-events: '-1'", "not a number of events"),
        ("slo-bot/no-data-after: soon", "invalid duration 'soon'"),
        ("slo-bot/budget-alerts: 'half'", "not a percentage"),
        ("slo-bot/budget-alerts: '50,150'", "'150' is not a percentage"),
        ("slo-bot/budget-alerts: '50,49.6'", "are one alert (budget-50)"),
        ("slo-bot/dashboard: grafana/d/api", "not an http(s) URL"),
        ("slo-bot/channel: C01 C02", "is not a Slack channel"),
        ("slo-bot/min-bad-event: '1'", "did you mean 'slo-bot/min-bad-events'"),
    ],
)
def test_a_wrong_slo_bot_annotation_is_refused_at_its_line(
    tmp_path: Path, annotation: str, phrase: str
) -> None:
    code, lines = validate(tmp_path, slo("\n    " + annotation))
    assert code == 1, lines
    problem_at(lines, tmp_path, 6, phrase)


def test_check_reports_a_wrong_annotation_instead_of_crashing(tmp_path: Path) -> None:
    (tmp_path / "sources.yaml").write_text(DATASOURCES)
    (tmp_path / "case.yaml").write_text(slo("\n    slo-bot/min-bad-events: three"))
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'slo.db'}", "SLO_BOT_CONFIG": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "bot", "check", "--json"], env=env, capture_output=True, text=True, timeout=60
    )
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 1
    assert "case.yaml:6: " in done.stdout + done.stderr


def test_good_annotations_pass(tmp_path: Path) -> None:
    annotations = (
        "\n    slo-bot/min-bad-events: '1.5'\n    slo-bot/no-data-after: 30m"
        "\n    slo-bot/budget-alerts: '50, 10'\n    slo-bot/dashboard: https://grafana.test/d/api"
        "\n    slo-bot/channel: 'C0123ABCD, #api-alerts'\n    slo-bot/escalate-after: 20m"
    )
    code, lines = validate(tmp_path, slo(annotations))
    assert (code, lines) == (0, lines)


def test_a_counter_query_prometheus_would_refuse_is_refused_with_a_hint(tmp_path: Path) -> None:
    case = slo(
        good='sum(http_requests{job="api",code!~"5.."})', total='http_requests{job="api"}', source="prom"
    )
    code, lines = validate(tmp_path, case)
    assert code == 1, lines
    problem_at(lines, tmp_path, 13, "counter: true with a aggregation")
    problem_at(lines, tmp_path, 13, "{{window}}")
    assert len(lines) == 1, lines


@pytest.mark.parametrize(
    ("good", "line", "phrase"),
    [
        ("http_requests{job=", 13, "not valid PromQL"),
        ('http_requests{job="api"} offset 5m', 13, "no offset modifiers allowed before range"),
        ("rate(http_requests[{{window}}]", 13, "not valid PromQL: unclosed left parenthesis"),
    ],
)
def test_a_query_that_does_not_parse_is_refused_at_its_line(
    tmp_path: Path, good: str, line: int, phrase: str
) -> None:
    code, lines = validate(tmp_path, slo(good=good, total="http_requests", source="prom"))
    assert code == 1, lines
    problem_at(lines, tmp_path, line, phrase)


@pytest.mark.parametrize(
    "good",
    [
        'http_requests{job="api",code!~"5.."}',
        'sum(increase(http_requests{code!~"5.."}[{{window}}]))',
        'sum(increase(http_requests{code!~"5.."}[{{.window}}]))',
        'sum(increase(http_requests{code!~"5.."}[{{ window }}])) # a comment',
    ],
)
def test_queries_slo_bot_can_send_pass(tmp_path: Path, good: str) -> None:
    code, lines = validate(tmp_path, slo(good=good, total="http_requests", source="prom"))
    assert (code, lines) == (0, lines)


def test_a_query_of_another_source_is_not_read_as_promql(tmp_path: Path) -> None:
    code, lines = validate(tmp_path, slo(good="sum(good", total="total"))
    assert (code, lines) == (0, lines)


def test_a_sloth_query_is_parsed_and_refused_at_the_sloth_line(tmp_path: Path) -> None:
    sloth = """\
version: prometheus/v1
service: api
slos:
  - name: availability
    objective: 99.9
    sli:
      events:
        error_query: sum(rate(http_requests{code=~"5.."}[{{.window}}])
        total_query: sum(rate(http_requests[{{.window}}]))
"""
    code, lines = validate(tmp_path, sloth)
    assert code == 1, lines
    problem_at(lines, tmp_path, 8, "not valid PromQL")


AGREEMENT = [
    # (query, counter): validate and a real Prometheus must agree on each, as slo-bot sends it
    ('http_requests{job="api"}', True),
    ('sum(http_requests{job="api"})', True),
    ("rate(http_requests[5m])", True),
    ("http_requests[5m]", True),
    ("http_requests offset 5m", True),
    ("(http_requests)", True),
    ("sum(increase(http_requests[{{window}}]))", True),
    ("sum(increase(http_requests[{{.window}}])) by (code)", True),
    ("sum(rate(http_requests[{{window}}]))", False),
    ("http_requests[{{window}}]", False),
    ("histogram_quantile(0.99, sum(rate(latency_bucket[5m])) by (le))", False),
    ('"text"', False),
    ("1 - sum(rate(errors[5m])) / sum(rate(http_requests[5m]))", False),
    ("sum(rate(http_requests[5m:1m]))", False),
    ("http_requests[5m:1m]", False),
    ("sum by (code) (http_requests) > bool 0", False),
    ("rate(http_requests)", False),
]


@pytest.fixture(scope="module")
def empty_prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = PrometheusServer(tmp_path_factory.mktemp("empty-prometheus") / "data")
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.mark.parametrize(("query", "counter"), AGREEMENT)
def test_validate_refuses_exactly_what_prometheus_refuses(
    empty_prometheus: str, query: str, counter: bool
) -> None:
    now = 1_700_000_000
    if counter and not WINDOW.search(query):
        # a bare counter selector: slo-bot reads its raw samples with instant queries of SELECTOR[span]
        answer = httpx.post(
            f"{empty_prometheus}/api/v1/query", data={"query": f"{query}[300s]", "time": str(now)}
        )
    else:
        answer = httpx.post(
            f"{empty_prometheus}/api/v1/query_range",
            data={"query": WINDOW.sub("5m", query), "start": str(now - 3600), "end": str(now), "step": "300"},
        )
    assert answer.status_code in (200, 400), answer.text
    problem = promql_problem(query, counter=counter)
    assert (answer.status_code == 400) == (problem is not None), (answer.text, problem)


def severity_catalogue(severity: str) -> str:
    return (
        slo("{slo-bot/incident-targets: pd}").replace(
            "  objectives: [{target: 0.999}]\n",
            "  objectives: [{target: 0.999}]\n  alertPolicies: [{alertPolicyRef: fast}]\n",
        )
        + f"""\
---
apiVersion: openslo/v1
kind: AlertPolicy
metadata: {{name: fast}}
spec:
  conditions:
    - kind: AlertCondition
      metadata: {{name: fast-burn}}
      spec:
        severity: {severity}
        condition: {{kind: burnrate, op: gt, threshold: 14.4, lookbackWindow: 1h}}
  notificationTargets: [{{targetRef: pd}}]
---
apiVersion: openslo/v1
kind: AlertNotificationTarget
metadata: {{name: pd}}
spec: {{target: pagerduty}}
"""
    )


def test_an_unknown_severity_is_refused_with_the_accepted_ones(tmp_path: Path) -> None:
    text = severity_catalogue("urgentish").replace("metadata: {name: pd}", PD_METADATA)
    code, lines = validate(tmp_path, text)
    assert code == 1, lines
    line = text.splitlines().index("        severity: urgentish") + 1
    problem_at(lines, tmp_path, line, "unknown severity 'urgentish'")
    problem_at(lines, tmp_path, line, "critical")
    assert len(lines) == 1, lines


PD_METADATA = "metadata: {name: pd, annotations: {slo-bot/routing-key: " + "k" * 32 + "}}"


@pytest.mark.parametrize(
    ("written", "acts_as", "pagerduty"),
    [
        ("page", "page", "critical"),
        ("critical", "page", "critical"),
        ("High", "page", "critical"),
        ("ticket", "ticket", "warning"),
        ("warning", "ticket", "warning"),
        ("info", "ticket", "warning"),
    ],
)
def test_a_severity_maps_to_page_or_ticket(
    tmp_path: Path, written: str, acts_as: str, pagerduty: str
) -> None:
    (tmp_path / "sources.yaml").write_text(DATASOURCES)
    (tmp_path / "case.yaml").write_text(
        severity_catalogue(written).replace("metadata: {name: pd}", PD_METADATA)
    )
    catalogue = load_paths([tmp_path], {})
    assert catalogue.problems == ()
    (entry,) = catalogue.entries
    assert policy_for(entry.slo, timedelta(days=30)).severities == (acts_as,)
    assert [t.name for t in incident_targets(entry.slo, acts_as)] == ["pd"]
    assert severity_of(acts_as) == pagerduty


LISTED = """\
- apiVersion: openslo/v1
  kind: Service
  metadata: {name: api}
- apiVersion: openslo/v1
  kind: SLO
  metadata:
    name: api
  spec:
    service: api
    indicator:
      metadata: {name: api}
      spec:
        ratioMetric:
          counter: true
          good: {metricSource: {metricSourceRef: demo, spec: {query: good}}}
          total: {metricSource: {metricSourceRef: demo, spec: {query: total}}}
    budgetingMethod: Occurrences
    objectives: [{target: 0.999}]
"""


def test_a_catalogue_written_as_one_list_of_documents_is_read_like_separate_documents(
    tmp_path: Path,
) -> None:
    code, lines = validate(tmp_path, LISTED)
    assert (code, lines) == (0, ["1 SLO(s) valid in 2 file(s)"])
    code, lines = validate(tmp_path, LISTED.replace("target: 0.999", "target: 99.9"))
    assert code == 1, lines
    problem_at(lines, tmp_path, 18, "spec.objectives[0].target: target must be at least 0")
    assert len(lines) == 1, lines


def test_a_list_item_that_is_not_a_document_is_named_at_its_line(tmp_path: Path) -> None:
    code, lines = validate(tmp_path, LISTED + "- just text\n")
    assert code == 1, lines
    problem_at(lines, tmp_path, 19, "expected an OpenSLO document (a mapping)")


def test_a_sloth_plugin_gets_a_named_not_supported_message(tmp_path: Path) -> None:
    sloth = """\
version: prometheus/v1
service: api
slos:
  - name: availability
    objective: 99.9
    sli:
      plugin:
        id: sloth-common/kubernetes/apiserver/availability
"""
    code, lines = validate(tmp_path, sloth)
    assert code == 1, lines
    problem_at(
        lines,
        tmp_path,
        7,
        "Sloth SLI plugins are not supported (plugin 'sloth-common/kubernetes/apiserver/availability')",
    )
    assert len(lines) == 1, lines


@pytest.mark.parametrize(
    ("annotation", "good", "total", "source", "phrase"),
    [
        ("slo-bot/group-by: 'route method'", "x", "y", "prom", "'route method' is not a label"),
        ("slo-bot/group-by: __name__", "x", "y", "prom", "'__name__' is not a label"),
        ("slo-bot/group-by: route", "good", "total", "demo", "Prometheus-compatible sources only"),
        (
            "slo-bot/group-by: route",
            "sum(increase(a[{{window}}])) / on (job) sum(increase(b[{{window}}]))",
            "sum(increase(b[{{window}}]))",
            "prom",
            "on (job) must also list route",
        ),
    ],
)
def test_a_group_that_cannot_be_grouped_is_refused_at_its_annotation(
    tmp_path: Path, annotation: str, good: str, total: str, source: str, phrase: str
) -> None:
    code, lines = validate(tmp_path, slo("\n    " + annotation, good=good, total=total, source=source))
    assert code == 1, lines
    problem_at(lines, tmp_path, 6, phrase)


def test_a_grouped_slo_on_prometheus_passes(tmp_path: Path) -> None:
    case = slo(
        "\n    slo-bot/group-by: 'route, method'",
        good='sum(increase(http_requests_total{code!~"5.."}[{{window}}]))',
        total='http_requests_total{job="api"}',
        source="prom",
    )
    code, lines = validate(tmp_path, case)
    assert (code, lines) == (0, lines)
