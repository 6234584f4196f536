"""OpenSLO documents built into domain SLOs: objectives, indicators, sources, windows, round trips."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from bot.catalogue import CatalogueError, Entry, build_slos
from bot.domain import IndicatorKind, Op
from tests.catalogue.helpers import lines, load_text

HEAD = "apiVersion: openslo/v1\nkind: SLO\nmetadata: {name: shop}\nspec:\n  service: shop\n"


def entries(tmp_path: Path, text: str) -> dict[str, Entry]:
    catalogue = load_text(tmp_path, text)
    assert lines(catalogue) == []
    for entry in catalogue.entries:
        assert entry.slo in build_slos(json.loads(json.dumps(entry.documents)), {})
    return {e.slo.name: e for e in catalogue.entries}


def test_several_objectives_make_one_slo_each(tmp_path: Path) -> None:
    built = entries(
        tmp_path,
        HEAD + "  indicatorRef: requests\n  budgetingMethod: Occurrences\n  objectives:\n"
        "    - {displayName: Most Requests!, target: 0.9}\n    - {targetPercent: 99.95}\n",
    )
    assert list(built) == ["shop-most-requests", "shop-1"]
    assert built["shop-1"].slo.objective.target_ratio == 0.9995
    assert built["shop-most-requests"].slo.objective.display_name == "Most Requests!"
    assert built["shop-1"].documents == built["shop-most-requests"].documents
    assert build_slos(built["shop-1"].documents, {}) == [e.slo for e in built.values()]


def test_composite_objectives_carry_their_own_indicators(tmp_path: Path) -> None:
    built = entries(
        tmp_path,
        HEAD + "  budgetingMethod: Occurrences\n  objectives:\n"
        "    - {displayName: a, target: 0.9, indicatorRef: requests, compositeWeight: 2}\n"
        "    - displayName: b\n      target: 0.5\n      op: lte\n      value: 300\n      compositeWeight: 1\n"
        "      indicator:\n        metadata: {name: latency}\n"
        "        spec: {thresholdMetric: {metricSource: {type: simulated, spec: {query: p99}}}}\n",
    )
    # one SLO, the composite, whose objectives are its weighted parts
    assert list(built) == ["shop"]
    slo = built["shop"].slo
    assert [(p.slo.name, p.weight, p.slo.member_of) for p in slo.parts] == [
        ("shop[a]", 2.0, "shop"),
        ("shop[b]", 1.0, "shop"),
    ]
    # its objective: 1 - (2 x 10 % + 1 x 50 %) / 3
    assert slo.objective.target_ratio == pytest.approx(1 - 0.7 / 3)
    assert slo.parts[0].slo.indicator.name == "requests"
    latency = slo.parts[1].slo
    assert latency.indicator.kind is IndicatorKind.THRESHOLD and not latency.indicator.counter
    assert (latency.objective.op, latency.objective.value) == (Op.LTE, 300.0)
    threshold = latency.indicator.threshold
    assert threshold is not None
    # A metricSource with only a type is a source of that type, named after it, with no connection.
    assert (threshold.source.name, threshold.source.type, threshold.source.connection) == (
        "Simulated",
        "Simulated",
        {},
    )
    assert threshold.spec == {"query": "p99"}
    # the parts rebuild from the stored documents, as the evaluations read them
    assert build_slos(built["shop"].documents, {}) == [slo]


def test_a_composite_without_weights_weighs_each_part_1(tmp_path: Path) -> None:
    built = entries(
        tmp_path,
        HEAD + "  budgetingMethod: Occurrences\n  objectives:\n"
        "    - {target: 0.99, indicatorRef: requests}\n"
        "    - {displayName: Checkout Pay, target: 0.999, indicatorRef: requests}\n",
    )
    slo = built["shop"].slo
    assert [(p.slo.name, p.weight) for p in slo.parts] == [
        ("shop[requests]", 1.0),
        ("shop[checkout-pay]", 1.0),
    ]
    assert slo.objective.target_ratio == pytest.approx(0.9945)


def test_raw_ratio_and_defaults(tmp_path: Path) -> None:
    built = entries(
        tmp_path,
        HEAD + "  indicator:\n    metadata: {name: ratio}\n    spec:\n      ratioMetric:\n"
        "        rawType: failure\n        raw: {metricSource: {metricSourceRef: demo, spec: {query: r}}}\n"
        "  budgetingMethod: RatioTimeslices\n  objectives: [{target: 0.99, timeSliceWindow: 5}]\n",
    )
    slo = built["shop"].slo
    assert slo.indicator.kind is IndicatorKind.RAW and slo.indicator.raw_type == "failure"
    assert slo.objective.timeslice_window == timedelta(minutes=5)  # a bare number counts minutes
    assert slo.window.spec == "30d" and slo.window.is_rolling  # no timeWindow: 30 days rolling
    assert slo.alert_policies == ()


def test_counter_defaults_to_true_and_can_be_false(tmp_path: Path) -> None:
    metric = "{metricSource: {metricSourceRef: demo, spec: {query: q}}}"
    built = entries(
        tmp_path,
        f"apiVersion: openslo/v1\nkind: SLI\nmetadata: {{name: gauge}}\nspec:\n  ratioMetric:\n"
        f"    counter: false\n    good: {metric}\n    total: {metric}\n---\n"
        + HEAD.replace("shop}", "g}")
        + "  indicatorRef: gauge\n  budgetingMethod: Occurrences\n  objectives: [{target: 0.9}]\n---\n"
        + HEAD.replace("shop}", "c}")
        + "  indicatorRef: requests\n  budgetingMethod: Occurrences\n  objectives: [{target: 0.9}]\n",
    )
    assert not built["g"].slo.indicator.counter
    assert built["c"].slo.indicator.counter


def test_inline_alert_policy_and_service_docs(tmp_path: Path) -> None:
    built = entries(
        tmp_path,
        "apiVersion: openslo/v1\nkind: Service\nmetadata: {name: shop}\n---\n"
        + HEAD
        + "  indicatorRef: requests\n  budgetingMethod: Occurrences\n  objectives: [{target: 0.9}]\n"
        "  alertPolicies:\n    - alertPolicyRef: page\n    - kind: AlertPolicy\n"
        "      metadata: {name: quiet, annotations: {team.example/mute: true}}\n      spec:\n"
        "        alertWhenResolved: false\n        conditions:\n"
        "          - kind: AlertCondition\n            metadata: {name: slow}\n"
        "            spec: {severity: ticket, condition: {threshold: 1, lookbackWindow: 3d}}\n",
    )
    entry = built["shop"]
    page, quiet = entry.slo.alert_policies
    assert [c.name for c in page.conditions] == ["burn"]
    assert [t.name for t in page.targets] == ["chat"]
    assert quiet.annotations == {"team.example/mute": "true"}
    assert not quiet.alert_when_resolved and quiet.targets == ()
    (slow,) = quiet.conditions
    assert (slow.op, slow.lookback_window, slow.alert_after) == (Op.GT, timedelta(days=3), timedelta(0))
    assert [d["kind"] for d in entry.documents] == [
        "SLO",
        "Service",
        "SLI",
        "DataSource",
        "AlertPolicy",
        "AlertCondition",
        "AlertNotificationTarget",
    ]


def test_service_docs_are_optional(tmp_path: Path) -> None:
    built = entries(
        tmp_path,
        "apiVersion: openslo/v1\nkind: Service\nmetadata: {name: other}\n---\n"
        + HEAD
        + "  indicatorRef: requests\n  budgetingMethod: Occurrences\n  objectives: [{target: 0.9}]\n",
    )
    assert [d["kind"] for d in built["shop"].documents] == ["SLO", "SLI", "DataSource"]


def test_build_slos_reports_stored_problems() -> None:
    with pytest.raises(CatalogueError) as caught:
        build_slos([{"apiVersion": "openslo/v1", "kind": "SLO", "metadata": {"name": "x"}, "spec": {}}])
    assert "<stored>:0: spec.service: required field missing" in str(caught.value)
    with pytest.raises(CatalogueError):
        build_slos([{"kind": "SLO", "spec": [1, 2]}, {}], {})


def test_problem_and_error_text() -> None:
    from bot.catalogue import Problem

    problem = Problem("a.yaml", 3, "spec.service", "required field missing")
    assert str(problem) == "a.yaml:3: spec.service: required field missing"
    assert str(CatalogueError([problem, problem])) == f"{problem}\n{problem}"


def test_exponent_numbers_are_numbers(tmp_path: Path) -> None:
    built = entries(
        tmp_path,
        HEAD + "  indicatorRef: requests\n  budgetingMethod: Occurrences\n  objectives: [{target: 9.99e-1}]\n"
        "  description: '1e3'\n",
    )
    assert built["shop"].slo.objective.target_ratio == 0.999
    assert built["shop"].slo.description == "1e3"  # quoted: still text
