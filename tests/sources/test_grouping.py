"""The PromQL of a grouped SLO: each aggregation keeps the group's labels; what cannot be grouped is
said before any query is sent. Every rewritten query is checked to parse again."""

from __future__ import annotations

import promql_parser
import pytest

from bot.catalogue.promql import grouping_problem
from bot.sources.grouping import GroupingProblem, group_query


@pytest.mark.parametrize(
    ("query", "grouped"),
    [
        ("sum(rate(x[5m]))", "sum by (route)(rate(x{}[5m]))"),
        (
            'sum(rate(x{code=~"5.."}[5m])) / sum(rate(x[5m]))',
            'sum by (route)(rate(x{code=~"5.."}[5m])) / sum by (route)(rate(x{}[5m]))',
        ),
        (
            "histogram_quantile(0.99, sum by (le) (rate(h_bucket[5m])))",
            "histogram_quantile(0.99, sum by (le, route)(rate(h_bucket{}[5m])))",
        ),
        ("sum by (route) (x)", "sum by (route)(x{})"),  # already grouped: unchanged in meaning
        ("sum without (route, instance) (x)", "sum without (instance)(x{})"),
        ("quantile(0.9, x)", "quantile by (route)(0.9, x{})"),
        ("1 - sum(x) / sum(y)", "1 - sum by (route)(x{}) / sum by (route)(y{})"),
        ('x:ratio{job="a"}', 'x:ratio{job="a"}'),  # no aggregation: the series keep their labels
    ],
)
def test_every_aggregation_keeps_the_group_labels(query: str, grouped: str) -> None:
    assert group_query(query, ["route"]) == grouped
    promql_parser.parse(grouped)


def test_several_labels_are_kept_in_order() -> None:
    assert group_query("sum by (le) (x)", ["route", "method"]) == "sum by (le, route, method)(x{})"


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("sum(a) / on (job) sum(b)", "on (job) must also list route"),
        ("sum(a) / ignoring (route) sum(b)", "ignoring (route) must not list route"),
    ],
)
def test_vector_matching_that_would_mix_members_is_refused(query: str, message: str) -> None:
    with pytest.raises(GroupingProblem, match=message.replace("(", r"\(").replace(")", r"\)")):
        group_query(query, ["route"])
    problem = grouping_problem(query, ("route",), counter=False)
    assert problem is not None and message in problem


def test_a_bare_counter_selector_is_grouped_by_its_series_and_a_window_query_is_checked() -> None:
    assert grouping_problem('http_requests_total{job="api"}', ("route",), counter=True) is None
    assert grouping_problem("sum(increase(x[{{window}}]))", ("route",), counter=True) is None
    problem = grouping_problem(
        "sum(increase(a[{{window}}])) / on (job) sum(increase(b[{{window}}]))", ("route",), counter=True
    )
    assert problem is not None and "on (job) must also list route" in problem
