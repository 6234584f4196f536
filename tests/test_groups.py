"""Grouped SLOs, the pure part: member names, the few words a folded group shows, when a member retires."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot import groups
from bot.catalogue import load_paths
from bot.slack.blocks import StatusLine
from bot.slack.state import fold
from tests.catalogue.helpers import EXAMPLE_ENV, EXAMPLES

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def _definitions() -> dict[str, object]:
    return {e.slo.name: e.slo for e in load_paths([EXAMPLES / "grouped.yaml"], EXAMPLE_ENV).entries}


@pytest.mark.parametrize(
    ("values", "name"),
    [
        (("/pay",), "checkout-latency[/pay]"),
        (("/pay", "GET"), "checkout-latency[/pay,GET]"),
        (("",), "checkout-latency[]"),  # a series without the label
        (("a,b", "c"), "checkout-latency[a\\,b,c]"),  # never the same name as ("a", "b,c")
        (("a", "b,c"), "checkout-latency[a,b\\,c]"),
    ],
)
def test_member_names_are_typable_and_distinct(values: tuple[str, ...], name: str) -> None:
    assert groups.member_name("checkout-latency", values) == name
    assert groups.definition_of(name) == "checkout-latency"


def test_a_very_long_value_keeps_the_name_within_the_column_and_distinct() -> None:
    first = groups.member_name("checkout", ("/" + "a" * 400,))
    second = groups.member_name("checkout", ("/" + "a" * 399 + "b",))
    assert len(first) <= groups.MAX_NAME and len(second) <= groups.MAX_NAME and first != second


def test_a_member_retires_after_its_window_without_events() -> None:
    slo = _definitions()["checkout-routes"]
    member = groups.member_slo(slo, ("/pay",))  # type: ignore[arg-type]
    assert groups.quiet_period(member) == timedelta(days=28)
    last = NOW - timedelta(days=28)
    assert groups.retires(member, last, NOW - timedelta(days=60), NOW)
    assert not groups.retires(member, last + timedelta(minutes=1), NOW - timedelta(days=60), NOW)
    # never any event: counted from when the member was first seen
    assert not groups.retires(member, None, NOW - timedelta(days=1), NOW)


def _line(name: str, left: float | None, group: str | None = None, **extra: object) -> StatusLine:
    return StatusLine(
        name=name,
        service="checkout",
        objective=None,
        remaining_ratio=left,
        burn=None,
        state="ok" if left is None or left > 0 else "exhausted",
        group=group,
        group_by=("route",) if group else (),
        **extra,  # type: ignore[arg-type]
    )


def test_status_folds_each_group_into_one_line_at_its_worst_member() -> None:
    lines = [
        _line("checkout[/pay]", -1.0, "checkout", alerts=("page",)),
        _line("search", 0.2),
        _line("checkout[/cart]", 0.67, "checkout"),
        _line("checkout[/search]", None, "checkout"),
        _line("empty", None, folded=groups.summary(("route",), [])),  # a group with no member yet
        _line("checkout", None, folded=groups.summary(("route",), [])),  # the group's own row
    ]
    folded = fold(lines)
    assert [line.name for line in folded] == ["checkout", "search", "empty"]
    text = folded[0].render()
    assert "`checkout` (checkout) — 3 routes: worst /pay -100 % left, /cart 67 % left" in text
    assert "*page*" in text
    assert "no routes yet" in folded[2].render()
