"""`kind: BudgetAdjustment` (apiVersion slo-bot/v1) documents: maintenance windows beside the SLOs.

Read in the shape Nobl9 users know; every problem at its FILE:LINE like the OpenSLO documents.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.adjustments import Adjustment, parse_rule
from bot.catalogue.checks import Checker
from bot.catalogue.model import Entry, Report
from bot.catalogue.openslo import parse_metadata
from bot.catalogue.origins import Doc

API_VERSION = "slo-bot/v1"
KIND = "BudgetAdjustment"
_DOCUMENT = frozenset({"apiVersion", "kind", "metadata", "spec"})
_SPEC = frozenset({"description", "firstEventStart", "duration", "rrule", "timeZone", "filters"})
_FILTERS = frozenset({"slos", "services"})


@dataclass(frozen=True)
class AdjustmentEntry:
    adjustment: Adjustment
    file: str
    line: int


def is_adjustment(raw: Any) -> bool:
    """A document of slo-bot's own schema rather than OpenSLO's."""
    return isinstance(raw, dict) and raw.get("apiVersion") == API_VERSION


def parse_adjustments(docs: Sequence[Doc], entries: Sequence[Entry], report: Report) -> list[AdjustmentEntry]:
    """The valid adjustments of `docs`; filters must name SLOs or services of `entries`."""
    slos = sorted({e.slo.name for e in entries})
    services = sorted({e.slo.service for e in entries})
    out: list[AdjustmentEntry] = []
    seen: dict[str, Doc] = {}
    for doc in docs:
        doc.data = doc.raw
        ck = Checker(report, doc)
        found = _parse(ck, slos, services)
        if found is None or ck.count:
            continue
        first = seen.setdefault(found.name, doc)
        if first is not doc:
            where = f"{first.file}:{first.locate(('metadata', 'name'))[0]}"
            ck.fail(("metadata", "name"), f"duplicate {KIND} name '{found.name}' (first defined at {where})")
            continue
        out.append(AdjustmentEntry(found, doc.file, doc.locate(())[0]))
    return out


def _parse(ck: Checker, slos: Sequence[str], services: Sequence[str]) -> Adjustment | None:
    data = ck.doc.data
    ck.only(data, (), _DOCUMENT)
    kind = ck.get_str(data, "kind", (), required=True)
    if kind is not None and kind != KIND:
        ck.fail(("kind",), f"unknown kind '{kind}' of {API_VERSION} (its kinds: {KIND})")
        return None
    meta = parse_metadata(ck, data, ())
    spec = ck.get_map(data, "spec", (), allowed=_SPEC, required=True)
    if meta is None or spec is None:
        return None
    sp = ("spec",)
    description = ck.get_str(spec, "description", sp) or ""
    first = _instant(ck, spec.get("firstEventStart"), (*sp, "firstEventStart"))
    duration = ck.get_duration(spec, "duration", sp, required=True)
    zone = ck.get_str(spec, "timeZone", sp) or "UTC"
    known_zone = True
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        ck.fail((*sp, "timeZone"), f"unknown time zone '{zone}' (an IANA name, e.g. Europe/Berlin)")
        known_zone = False
    rule = ck.get_str(spec, "rrule", sp)
    if rule is not None and first is not None and known_zone:
        try:
            parse_rule(rule, first, zone)
        except ValueError as err:
            ck.fail((*sp, "rrule"), f"invalid RFC 5545 rule '{rule}': {err}")
    filters = ck.get_map(spec, "filters", sp, allowed=_FILTERS, required=True)
    names: list[str] = []
    groups: list[str] = []
    if filters is not None:
        names = _names(ck, filters, "slos", slos, "SLO")
        groups = _names(ck, filters, "services", services, "service")
        if not names and not groups and not ck.count:
            ck.fail((*sp, "filters"), "name at least one SLO (slos: [{name: ...}]) or service")
    if first is None or duration is None or not known_zone:
        return None
    return Adjustment(
        name=meta.name,
        first_start=first,
        duration=duration[1],
        description=description,
        rrule=rule,
        time_zone=zone,
        slos=tuple(names),
        services=tuple(groups),
    )


def _instant(ck: Checker, value: Any, path: tuple[str, ...]) -> datetime | None:
    if value is None:
        ck.fail(path, "required field missing")
        return None
    try:
        at = datetime.fromisoformat(str(value))
    except ValueError:
        ck.fail(path, f"expected an RFC 3339 time such as 2026-12-06T02:00:00Z, got {value!r}")
        return None
    if at.tzinfo is None:
        ck.fail(path, "needs a UTC offset (Z or +01:00): the time zone of the recurrence is timeZone")
        return None
    return at.astimezone(UTC)


def _names(ck: Checker, filters: dict[str, Any], key: str, known: Sequence[str], what: str) -> list[str]:
    items = ck.get_list(filters, key, ("spec", "filters"))
    out: list[str] = []
    for i, item in enumerate(items or []):
        path = ("spec", "filters", key, i)
        mapping = ck.mapping(item, path, {"name"})
        name = None if mapping is None else ck.get_str(mapping, "name", path, required=True)
        if name is None:
            continue
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            ck.fail((*path, "name"), f"unknown {what} '{name}'{hint}")
            continue
        out.append(name)
    return out
