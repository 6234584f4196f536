"""The SLO kind of OpenSLO v1: indicator choice, time window, budgeting method, objectives."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.catalogue.alerts import PolicyDef, inline_or_ref
from bot.catalogue.checks import Checker, describe, is_number
from bot.catalogue.openslo import (
    SPEC_FIELDS,
    Meta,
    Ref,
    SliDef,
    description,
    parse_metadata,
    parse_op,
    parse_sli_spec,
)
from bot.catalogue.origins import Doc, Path
from bot.domain import BudgetingMethod, Objective, TimeWindow
from bot.durations import parse_duration

# OpenSLO leaves timeWindow optional; an SLO without one gets the most common period.
DEFAULT_WINDOW = TimeWindow("30d", timedelta(days=30), is_rolling=True)
METHODS = ", ".join(m.value for m in BudgetingMethod)
SLICE_RULE = (
    "timeSliceWindow must be a whole number of minutes that divides 1 hour (1m, 2m, 3m, 4m, 5m, "
    "6m, 10m, 12m, 15m, 20m, 30m or 60m): slo-bot stores time slices in buckets aligned on the hour"
)
_OBJECTIVE = frozenset(
    {
        "displayName",
        "op",
        "value",
        "target",
        "targetPercent",
        "timeSliceTarget",
        "timeSliceWindow",
        "indicator",
        "indicatorRef",
        "compositeWeight",
    }
)
_WINDOW = frozenset({"duration", "isRolling", "calendar"})
_CALENDAR = frozenset({"startTime", "timeZone"})


@dataclass(frozen=True)
class ObjectiveDef:
    path: Path
    objective: Objective
    indicator: SliDef | Ref | None  # composite SLOs give each objective its own
    weight: float | None = None  # compositeWeight: a composite's parts weigh 1 each without it


@dataclass(frozen=True)
class SloDef:
    doc: Doc
    meta: Meta
    description: str
    service: str
    indicator: SliDef | Ref | None
    method: BudgetingMethod
    window: TimeWindow
    objectives: tuple[ObjectiveDef, ...]
    policies: tuple[PolicyDef | Ref, ...]


def parse_slo_spec(ck: Checker, spec: dict[str, Any], path: Path, meta: Meta) -> SloDef | None:
    text = description(ck, spec, path)
    service = ck.get_str(spec, "service", path, required=True)
    indicator = parse_indicator(ck, spec, path)
    method = None
    written = ck.get_str(spec, "budgetingMethod", path, required=True)
    if written is not None:
        try:
            method = BudgetingMethod(written)
        except ValueError:
            ck.fail((*path, "budgetingMethod"), f"unknown budgetingMethod '{written}' ({METHODS})")
    window = parse_window(ck, spec, path)
    items = ck.get_list(spec, "objectives", path, required=True)
    if items is not None and not items:
        ck.fail((*path, "objectives"), "needs at least one objective")
    objectives = [
        parse_objective(ck, item, (*path, "objectives", i), method) for i, item in enumerate(items or [])
    ]
    composite = [o for o in objectives if o is not None and o.indicator is not None]
    has_indicator = spec.get("indicator") is not None or spec.get("indicatorRef") is not None
    if composite and has_indicator:
        ck.fail(
            path,
            "give indicator/indicatorRef on the spec or on every objective (a composite SLO), not both",
        )
    elif not composite and not has_indicator:
        ck.fail(path, "needs indicator (an inline SLI) or indicatorRef (the name of an SLI)")
    elif composite:
        for i, o in enumerate(objectives):
            if o is not None and o.indicator is None:
                ck.fail(
                    (*path, "objectives", i),
                    "every objective of a composite SLO needs indicator or indicatorRef",
                )
        composite_problems(ck, [o for o in objectives if o is not None], items or [], path)
    policies = [
        inline_or_ref(ck, item, (*path, "alertPolicies", i), "alertPolicyRef", "AlertPolicy")
        for i, item in enumerate(ck.get_list(spec, "alertPolicies", path) or [])
    ]
    # A definition even when something above is wrong, so references are still followed and
    # reported; the document's problems keep its SLOs out of the catalogue's entries.
    return SloDef(
        ck.doc,
        meta,
        text,
        service or "",
        indicator,
        method or BudgetingMethod.OCCURRENCES,
        window or DEFAULT_WINDOW,
        tuple(o for o in objectives if o is not None),
        tuple(p for p in policies if p is not None),
    )


def parse_indicator(ck: Checker, spec: dict[str, Any], path: Path) -> SliDef | Ref | None:
    """`indicator` (an inline SLI: metadata and spec) or `indicatorRef` (an SLI's name)."""
    inline, ref = spec.get("indicator"), spec.get("indicatorRef")
    if inline is not None and ref is not None:
        ck.fail((*path, "indicatorRef"), "indicator and indicatorRef cannot be used together")
        return None
    if ref is not None:
        name = ck.get_name(spec, "indicatorRef", path)
        return None if name is None else Ref(ck.doc, (*path, "indicatorRef"), name)
    if inline is None:
        return None
    ip = (*path, "indicator")
    body = ck.get_map(spec, "indicator", path, allowed={"metadata", "spec"})
    if body is None:
        return None
    meta = parse_metadata(ck, body, ip)
    sli = ck.get_map(body, "spec", ip, allowed=SPEC_FIELDS["SLI"], required=True)
    if meta is None or sli is None:
        return None
    return parse_sli_spec(ck, sli, (*ip, "spec"), meta)


def parse_window(ck: Checker, spec: dict[str, Any], path: Path) -> TimeWindow | None:
    if spec.get("timeWindow") is None:
        return DEFAULT_WINDOW
    windows = ck.get_list(spec, "timeWindow", path)
    if windows is None:
        return None
    if len(windows) != 1:
        ck.fail((*path, "timeWindow"), f"needs exactly one item (got {len(windows)})")
        return None
    wp: Path = (*path, "timeWindow", 0)
    window = ck.mapping(windows[0], wp, _WINDOW)
    if window is None:
        return None
    duration = ck.get_duration(window, "duration", wp, required=True)
    rolling = ck.get_bool(window, "isRolling", wp)
    calendar = ck.get_map(window, "calendar", wp, allowed=_CALENDAR)
    if rolling and calendar is not None:
        ck.fail((*wp, "calendar"), "a rolling window (isRolling: true) has no calendar")
        return None
    if not rolling and calendar is None:
        if rolling is False:
            ck.fail(
                (*wp, "isRolling"),
                "isRolling is false but no calendar is given: set "
                "isRolling: true, or add calendar with startTime and timeZone",
            )
        elif window.get("isRolling") is None and window.get("calendar") is None:
            ck.fail(wp, "needs isRolling: true (a rolling window) or a calendar")
        return None  # otherwise a wrong type, reported already
    if duration is None:
        return None
    if calendar is None:
        return TimeWindow(duration[0], duration[1], is_rolling=True)
    cp = (*wp, "calendar")
    zone = ck.get_str(calendar, "timeZone", cp) or "UTC"
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        ck.fail(
            (*cp, "timeZone"),
            f"unknown time zone '{zone}': use an IANA name such as Europe/Berlin or America/New_York",
        )
        return None
    start = parse_start(ck, calendar, cp)
    if start is None and calendar.get("startTime") is not None:
        return None
    return TimeWindow(duration[0], duration[1], False, start, zone)


def parse_start(ck: Checker, calendar: dict[str, Any], path: Path) -> datetime | None:
    text = calendar.get("startTime")
    if text is None:
        return None
    shown = repr(text) if isinstance(text, str) else describe(text)
    bad = f"invalid startTime {shown}: expected a date and time such as 2024-01-01 00:00:00"
    if not isinstance(text, str):
        ck.fail((*path, "startTime"), bad)
        return None
    try:
        start = datetime.fromisoformat(text.strip())
    except ValueError:
        ck.fail((*path, "startTime"), bad)
        return None
    if start.tzinfo is not None:
        ck.fail((*path, "startTime"), "write startTime without a time zone: timeZone gives it")
        return None
    return start


def parse_objective(
    ck: Checker, item: Any, path: Path, method: BudgetingMethod | None
) -> ObjectiveDef | None:
    m = ck.mapping(item, path, _OBJECTIVE)
    if m is None:
        return None
    display = ck.get_str(m, "displayName", path)
    op = parse_op(ck, m, path)
    value = ck.get_number(m, "value", path)
    ratio = parse_target(ck, m, path)
    slice_target = ck.get_number(m, "timeSliceTarget", path)
    if slice_target is not None and not 0 < slice_target <= 1:
        ck.fail(
            (*path, "timeSliceTarget"),
            "must be greater than 0 and at most 1 (0.95 means 95 % of the slice is good)",
        )
    if slice_target is None and method is BudgetingMethod.TIMESLICES:
        ck.fail(
            (*path, "timeSliceTarget"),
            "required field missing: Timeslices needs timeSliceTarget, in (0, 1]",
        )
    slice_window = parse_slice_window(ck, m, path)
    if m.get("timeSliceWindow") is None and method in (
        BudgetingMethod.TIMESLICES,
        BudgetingMethod.RATIO_TIMESLICES,
    ):
        ck.fail(
            (*path, "timeSliceWindow"),
            f"required field missing: {method} needs timeSliceWindow (e.g. 1m or 5m)",
        )
    weight = ck.get_number(m, "compositeWeight", path)
    if weight is not None and weight <= 0:
        ck.fail((*path, "compositeWeight"), "must be greater than 0")
    indicator = parse_indicator(ck, m, path)
    if ratio is None:
        return None
    objective = Objective(ratio, display, op, value, slice_target, slice_window)
    return ObjectiveDef(path, objective, indicator, weight if weight is not None and weight > 0 else None)


def composite_problems(ck: Checker, objectives: list[ObjectiveDef], items: list[Any], path: Path) -> None:
    """A composite SLO's weights are on every objective or on none (OpenSLO: each then weighs 1):
    one left out among weighted ones is more likely forgotten than meant to weigh 1. Its parts
    share the SLO's budgeting method; their slices must be as long, to be summed bucket by bucket."""
    written = [isinstance(item, dict) and item.get("compositeWeight") is not None for item in items]
    if any(written) and not all(written):
        for i, given in enumerate(written):
            if not given:
                ck.fail(
                    (*path, "objectives", i),
                    "required field missing: compositeWeight (the other objectives of this composite "
                    "SLO have one; give it on every objective or on none, each then weighs 1)",
                )
    slices = {o.objective.timeslice_window for o in objectives}
    if len(slices) > 1:
        first = objectives[0].objective.timeslice_window
        for o in objectives[1:]:
            if o.objective.timeslice_window != first:
                ck.fail(
                    (*o.path, "timeSliceWindow"),
                    "every objective of a composite SLO needs the same timeSliceWindow (its parts' "
                    "slices are summed together)",
                )


def parse_target(ck: Checker, m: dict[str, Any], path: Path) -> float | None:
    """The target as a ratio, from `target` (0.999) or `targetPercent` (99.9)."""
    target = ck.get_number(m, "target", path)
    percent = ck.get_number(m, "targetPercent", path)
    if m.get("target") is not None and m.get("targetPercent") is not None:
        ck.fail((*path, "targetPercent"), "target and targetPercent cannot be used together")
        return None
    if m.get("target") is None and m.get("targetPercent") is None:
        ck.fail(
            (*path, "target"),
            "required field missing: give target (e.g. 0.999) or targetPercent (e.g. 99.9)",
        )
        return None
    if target is not None:
        if not 0 <= target < 1:
            ck.fail(
                (*path, "target"),
                f"target must be at least 0 and less than 1, got {target:g} (0.999 means 99.9 %)",
            )
            return None
        return target
    if percent is not None:
        if not 0 <= percent < 100:
            ck.fail(
                (*path, "targetPercent"),
                f"targetPercent must be at least 0 and less than 100, got {percent:g}",
            )
            return None
        return round(percent / 100, 12)  # 99.9 / 100 is 0.9990000000000001 in floating point
    return None


def parse_slice_window(ck: Checker, m: dict[str, Any], path: Path) -> timedelta | None:
    """A number of minutes (OpenSLO's default unit) or a duration shorthand."""
    value = m.get("timeSliceWindow")
    if value is None:
        return None
    where = (*path, "timeSliceWindow")
    if is_number(value):
        window = timedelta(minutes=value)
    elif isinstance(value, str):
        try:
            text = value.strip()
            window = timedelta(minutes=int(text)) if text.isdigit() else parse_duration(text)
        except ValueError as err:
            ck.fail(where, str(err))
            return None
    else:
        ck.fail(where, f"expected a duration such as 1m, got {describe(value)}")
        return None
    minutes = window.total_seconds() / 60
    if minutes <= 0 or minutes != int(minutes) or 60 % int(minutes) != 0:
        ck.fail(where, SLICE_RULE)
        return None
    return window
