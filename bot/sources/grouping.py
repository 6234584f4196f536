"""PromQL of a grouped SLO: every aggregation of the indicator's query keeps the group's labels.

`sum(rate(x[5m]))` becomes `sum by (route) (rate(x[5m]))`, so one query answers one series per
label value. Rewritten on the parsed tree (`promql-parser`), never by string surgery.
"""

from __future__ import annotations

from collections.abc import Sequence

import promql_parser
from promql_parser import AggModifierType, AggregateExpr, BinaryExpr, LabelModifierType


class GroupingProblem(ValueError):
    """The query cannot be grouped as written; the message says what to change."""


def group_query(query: str, labels: Sequence[str]) -> str:
    """`query` with every aggregation keeping `labels` (a `by` list gains them, a `without` list
    loses them). Raises GroupingProblem (or ValueError for a query that is not PromQL)."""
    expr = promql_parser.parse(query)
    problem = _matching_problem(expr, labels)
    if problem:
        raise GroupingProblem(problem)

    def keep_labels(node: promql_parser.Expr) -> promql_parser.Expr | None:
        if not isinstance(node, AggregateExpr):
            return None
        modifier = node.modifier
        if modifier is not None and modifier.type == AggModifierType.Without:
            kept = [name for name in modifier.labels if name not in labels]
            clause = f"without ({', '.join(kept)})"
        else:
            names = list(modifier.labels) if modifier is not None else []
            names += [name for name in labels if name not in names]
            clause = f"by ({', '.join(names)})"
        param = "" if node.param is None else f"{node.param}, "
        rewritten: promql_parser.Expr = promql_parser.parse(f"{node.op} {clause} ({param}{node.expr})")
        return rewritten

    return str(promql_parser.transform(expr, post_visit=keep_labels))


def _matching_problem(expr: promql_parser.Expr, labels: Sequence[str]) -> str:
    """A binary operator that matches `on` other labels, or `ignoring` a group label, would mix the
    members of the group: say so (rewriting the matching is left to the author, who knows it)."""
    found: list[str] = []

    def visit(node: promql_parser.Expr) -> None:
        if not isinstance(node, BinaryExpr) or node.modifier is None or node.modifier.matching is None:
            return
        matching = node.modifier.matching
        if matching.type == LabelModifierType.Include:
            missing = [name for name in labels if name not in matching.labels]
            if missing:
                found.append(f"on ({', '.join(matching.labels)}) must also list {', '.join(missing)}")
        else:
            ignored = [name for name in labels if name in matching.labels]
            if ignored:
                found.append(f"ignoring ({', '.join(matching.labels)}) must not list {', '.join(ignored)}")

    promql_parser.walk(expr, pre_visit=visit)
    return "; ".join(found)


def group_problem(query: str, labels: Sequence[str]) -> str | None:
    """Why `query` (already valid PromQL) cannot be grouped by `labels`; None when it can."""
    try:
        grouped = group_query(query, labels)
        promql_parser.parse(grouped)
    except GroupingProblem as err:
        return f"cannot group by {', '.join(labels)}: {err}"
    except ValueError as err:
        return f"cannot group by {', '.join(labels)}: the rewritten query does not parse ({err})"
    return None
