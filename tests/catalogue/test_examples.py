"""The shipped examples are valid, and build the SLOs they describe."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest

from bot import cli, groups
from bot.catalogue import build_slos, load_paths
from bot.domain import BudgetingMethod, IndicatorKind, Op
from bot.routing import all_incident_targets, escalate_after, incident_targets, oncall_group
from bot.sources.datadog import render_query
from bot.sources.grouping import group_query
from tests.catalogue.helpers import EXAMPLE_ENV, EXAMPLES

FILES = sorted(p.name for p in EXAMPLES.glob("*.yaml"))


@pytest.mark.parametrize("name", FILES)
def test_example_has_no_problems(name: str) -> None:
    catalogue = load_paths([EXAMPLES / name], EXAMPLE_ENV)
    assert [str(p) for p in catalogue.problems] == []
    assert catalogue.entries


def test_examples_directory_together() -> None:
    catalogue = load_paths([EXAMPLES], EXAMPLE_ENV)
    assert catalogue.problems == ()
    assert catalogue.files == tuple(str(EXAMPLES / name) for name in FILES)
    assert len({e.slo.name for e in catalogue.entries}) == len(catalogue.entries) == 12


@pytest.mark.parametrize("name", FILES)
def test_every_entry_rebuilds_from_its_stored_documents(name: str) -> None:
    for entry in load_paths([EXAMPLES / name], EXAMPLE_ENV).entries:
        stored = json.loads(json.dumps(entry.documents))
        assert entry.slo in build_slos(stored, EXAMPLE_ENV)


def test_the_composite_example_weighs_its_three_parts() -> None:
    (entry,) = load_paths([EXAMPLES / "composite.yaml"], EXAMPLE_ENV).entries
    slo = entry.slo
    assert [(p.slo.name, p.weight, p.slo.objective.target_ratio) for p in slo.parts] == [
        ("checkout-journey[browse]", 1.0, 0.99),
        ("checkout-journey[cart]", 2.0, 0.995),
        ("checkout-journey[pay]", 3.0, 0.999),
    ]
    # 1 - (1 x 1 % + 2 x 0.5 % + 3 x 0.1 %) / 6
    assert slo.objective.target_ratio == pytest.approx(1 - 0.023 / 6)
    names = [p.slo.indicator.name for p in slo.parts]
    assert names == ["catalogue-latency", "cart-requests", "payment-errors"]


def test_slo_bot_validate_accepts_the_grouped_example(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PROMETHEUS_URL", EXAMPLE_ENV["PROMETHEUS_URL"])
    assert cli.main(["validate", str(EXAMPLES / "grouped.yaml")]) == 0
    assert "2 SLO(s) valid in 1 file(s)" in capsys.readouterr().err


def test_grouped_example() -> None:
    entries = {e.slo.name: e.slo for e in load_paths([EXAMPLES / "grouped.yaml"], EXAMPLE_ENV).entries}
    assert list(entries) == ["checkout-routes", "checkout-latency"]
    assert groups.labels_of(entries["checkout-routes"]) == ("route",)
    assert groups.labels_of(entries["checkout-latency"]) == ("route", "method")
    member = groups.member_slo(entries["checkout-latency"], ("/cart", "GET"))
    assert member.name == "checkout-latency[/cart,GET]"
    assert member.group == (("route", "/cart"), ("method", "GET"))
    total = entries["checkout-latency"].indicator.total
    assert total is not None
    assert group_query(total.query.replace("{{window}}", "5m"), ["route", "method"]) == (
        'sum by (route, method)(increase(http_request_duration_seconds_count{job="checkout"}[5m]))'
    )


def test_checkout_example() -> None:
    entries = {e.slo.name: e for e in load_paths([EXAMPLES / "checkout.yaml"], {}).entries}
    assert list(entries) == ["checkout-availability", "search-availability", "checkout-good-minutes"]

    availability = entries["checkout-availability"].slo
    assert availability.service == "checkout"
    assert availability.objective.target_ratio == 0.999
    assert availability.window.duration == timedelta(days=30) and availability.window.is_rolling
    assert availability.annotations == {"slo-bot/channel": "C0123ABCD"}
    assert availability.labels == {"team": "payments", "tier": "1"}
    indicator = availability.indicator
    assert indicator.kind is IndicatorKind.RATIO and indicator.counter
    assert indicator.good is not None and indicator.total is not None and indicator.bad is None
    assert (indicator.good.query, indicator.total.query) == ("good", "total")
    assert indicator.good.source.type == "Simulated"
    assert indicator.good.source.connection == {
        "seed": 42,
        "requests_per_minute": 600,
        "error_ratio": 0.0002,
        "incidents": [{"every": "7d", "offset": "4d14h", "duration": "20m", "error_ratio": 0.1}],
    }
    (policy,) = availability.alert_policies
    assert policy.name == "checkout-fast-burn"
    assert (policy.alert_when_no_data, policy.alert_when_resolved, policy.alert_when_breaching) == (
        False,
        True,
        True,
    )
    (condition,) = policy.conditions
    assert (condition.severity, condition.op, condition.threshold) == ("page", Op.GT, 14.4)
    assert (condition.lookback_window, condition.alert_after) == (timedelta(hours=1), timedelta(minutes=5))
    (target,) = policy.targets
    assert (target.target, target.annotations) == ("slack", {"slo-bot/channel": "C0123ABCD"})

    search = entries["search-availability"]
    assert search.slo.objective.target_ratio == 0.99
    assert search.slo.window.duration == timedelta(days=28)
    assert search.slo.indicator.name == "search-errors"
    assert search.slo.indicator.bad is not None and search.slo.indicator.good is None
    assert [d["kind"] for d in search.documents] == ["SLO", "Service", "SLI", "DataSource"]

    minutes = entries["checkout-good-minutes"].slo
    assert minutes.budgeting_method is BudgetingMethod.TIMESLICES
    assert minutes.objective.timeslice_target_ratio == 0.95
    assert minutes.objective.timeslice_window == timedelta(minutes=1)


def test_prometheus_example() -> None:
    entries = {e.slo.name: e for e in load_paths([EXAMPLES / "prometheus.yaml"], EXAMPLE_ENV).entries}
    availability = entries["api-availability"].slo
    assert availability.indicator.good is not None
    assert availability.indicator.good.query == 'http_requests_total{job="api",code!~"5.."}'
    assert availability.indicator.good.source.connection == {"url": "http://prometheus.test:9090"}
    assert entries["api-availability"].documents[-1]["spec"]["connectionDetails"] == {
        "url": "${PROMETHEUS_URL}"
    }
    (policy,) = availability.alert_policies
    assert [t.annotations for t in policy.targets] == [{"slo-bot/channel": "C0API0NCALL"}]
    latency = entries["api-latency"].slo
    assert latency.indicator.total is not None and "[{{window}}]" in latency.indicator.total.query
    assert not latency.window.is_rolling
    assert latency.window.calendar_start == datetime(2024, 1, 1)
    assert (latency.window.spec, latency.window.time_zone) == ("1M", "Europe/Berlin")


def test_prometheus_example_needs_its_variable() -> None:
    catalogue = load_paths([EXAMPLES / "prometheus.yaml"], {})
    assert [str(p) for p in catalogue.problems] == [
        f"{EXAMPLES / 'prometheus.yaml'}:11: spec.connectionDetails.url: "
        "environment variable PROMETHEUS_URL is not set"
    ]


def test_datadog_example() -> None:
    (entry,) = load_paths([EXAMPLES / "datadog.yaml"], EXAMPLE_ENV).entries
    indicator = entry.slo.indicator
    assert indicator.bad is not None and indicator.total is not None
    source = indicator.total.source
    assert (source.type, source.connection["site"]) == ("Datadog", "datadoghq.eu")
    assert source.connection["apiKey"] == "dd-api-key-example"
    assert render_query(indicator.bad.query, counter=True, step=timedelta(minutes=1)) == (
        "sum:trace.http.request.errors{service:checkout,env:prod}.as_count().rollup(sum, 60)"
    )
    assert "dd-api-key-example" not in json.dumps(entry.documents)  # stored as ${DD_API_KEY}
    assert load_paths([EXAMPLES / "datadog.yaml"], {}).problems  # the keys are needed


def test_incidents_example() -> None:
    (entry,) = load_paths([EXAMPLES / "incidents.yaml"], EXAMPLE_ENV).entries
    slo = entry.slo
    (pagerduty,) = slo.page_targets
    assert (pagerduty.target, pagerduty.annotations["slo-bot/routing-key"]) == (
        "pagerduty",
        "R0UT1NGKEYR0UT1NGKEYR0UT1NGKEY01",
    )
    assert [t.name for t in incident_targets(slo, "page")] == ["payments-opsgenie", "payments-pagerduty"]
    assert [t.name for t in incident_targets(slo, "ticket")] == ["payments-webhook"]
    assert len(all_incident_targets(slo)) == 3
    assert (escalate_after(slo, "page"), escalate_after(slo, "ticket")) == (
        timedelta(minutes=10),
        timedelta(minutes=15),
    )
    assert oncall_group(slo, "page") == "S0PAYONCALL"
    # the secrets are stored as written, never as their values
    stored = {d["metadata"]["name"]: d for d in entry.documents}
    assert stored["payments-pagerduty"]["metadata"]["annotations"]["slo-bot/routing-key"] == (
        "${PAGERDUTY_ROUTING_KEY}"
    )
    assert "webhook-secret" not in json.dumps(entry.documents)
