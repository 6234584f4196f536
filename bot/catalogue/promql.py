"""PromQL queries checked offline, with a real PromQL parser, in the form slo-bot will send them.

A counter query without `{{window}}` is read as a bare selector (`SELECTOR[span]`, counted per step);
every other query goes to `query_range` with `{{window}}` / `{{.window}}` replaced by the step.
"""

from __future__ import annotations

import promql_parser

from bot.sources.grouping import group_problem
from bot.sources.prometheus import WINDOW  # the placeholders the source fills in

_SAMPLE_WINDOW = "5m"  # any duration: the placeholder only has to parse as one
COUNTER_HINT = (
    'a counter query is a bare selector, e.g. http_requests_total{job="api"} (slo-bot counts its '
    'increase per step), or holds {{window}}, e.g. sum(increase(http_requests_total{job="api"}'
    "[{{window}}]))"
)


def promql_problem(query: str, *, counter: bool) -> str | None:
    """Why Prometheus would refuse `query` as slo-bot sends it; None when it would take it."""
    windowed = WINDOW.search(query) is not None
    text = WINDOW.sub(_SAMPLE_WINDOW, query) if windowed else query
    try:
        expr = promql_parser.parse(text)
    except ValueError as err:
        return f"not valid PromQL: {err}"
    if counter and not windowed:
        if not isinstance(expr, promql_parser.VectorSelector):
            return (
                f"counter: true with a {_what(expr)}: slo-bot would read it as a selector of counter "
                f"series and Prometheus refuses that; {COUNTER_HINT}"
            )
        try:
            promql_parser.parse(f"{text.strip()}[{_SAMPLE_WINDOW}]")
        except ValueError as err:
            return f"counter: true needs a selector slo-bot can take a range of ({err}); {COUNTER_HINT}"
        return None
    try:
        # a range query returns instant vectors or scalars: the binary operator checks exactly that
        promql_parser.parse(f"(\n{text}\n) + 0")
    except ValueError:
        return (
            f"a {_what(expr)} is not an instant vector or a scalar, so Prometheus refuses it as a range "
            "query: aggregate it over time, e.g. sum(rate(x[{{window}}]))"
        )
    return None


def grouping_problem(query: str, labels: tuple[str, ...], *, counter: bool) -> str | None:
    """Why `query` cannot be one query for every member of a group by `labels`; None when it can.

    A bare counter selector always can (its series are summed per member); any other query must
    let its aggregations keep the labels (see `bot.sources.grouping`)."""
    windowed = WINDOW.search(query) is not None
    if counter and not windowed:
        return None
    return group_problem(WINDOW.sub(_SAMPLE_WINDOW, query), labels)


def _what(expr: object) -> str:
    names = {
        "AggregateExpr": "aggregation",
        "BinaryExpr": "binary expression",
        "Call": "function call",
        "MatrixSelector": "range selector",
        "SubqueryExpr": "subquery",
        "ParenExpr": "parenthesised expression",
        "NumberLiteral": "number",
        "StringLiteral": "string",
        "UnaryExpr": "negation",
    }
    return names.get(type(expr).__name__, "query")
