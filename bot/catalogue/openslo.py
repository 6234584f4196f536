"""OpenSLO v1 documents one at a time: the schema of each kind, read into definitions.

References to other documents stay names (`Ref`) here; `resolve.py` follows them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from bot.catalogue.checks import Checker, describe
from bot.catalogue.origins import Doc, Path
from bot.catalogue.settings import annotation_text, check_annotations
from bot.domain import DataSource, IndicatorKind, Op
from bot.sources import HTTP_SOURCES, KNOWN_SOURCE_TYPES

API_VERSION = "openslo/v1"
KINDS = (
    "SLO",
    "SLI",
    "DataSource",
    "Service",
    "AlertPolicy",
    "AlertCondition",
    "AlertNotificationTarget",
)
SPEC_FIELDS: dict[str, frozenset[str]] = {
    "SLO": frozenset(
        {
            "description",
            "service",
            "indicator",
            "indicatorRef",
            "timeWindow",
            "budgetingMethod",
            "objectives",
            "alertPolicies",
        }
    ),
    "SLI": frozenset({"description", "thresholdMetric", "ratioMetric"}),
    "DataSource": frozenset({"description", "type", "connectionDetails"}),
    "Service": frozenset({"description"}),
    "AlertPolicy": frozenset(
        {
            "description",
            "alertWhenNoData",
            "alertWhenResolved",
            "alertWhenBreaching",
            "conditions",
            "notificationTargets",
        }
    ),
    "AlertCondition": frozenset({"description", "severity", "condition"}),
    "AlertNotificationTarget": frozenset({"description", "target"}),
}
_METADATA = frozenset({"name", "displayName", "labels", "annotations"})
_RATIO = frozenset({"counter", "good", "bad", "total", "rawType", "raw"})
_LABEL_KEY = re.compile(r"^[a-zA-Z0-9]([-._a-zA-Z0-9]{0,61}[a-zA-Z0-9])?$")
_DNS_LABEL = r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?"
_ANNOTATION_KEY = re.compile(
    rf"^({_DNS_LABEL}(\.{_DNS_LABEL})*/)?[a-zA-Z0-9]([-._a-zA-Z0-9]{{0,61}}[a-zA-Z0-9])?$"
)
_SOURCE_TYPES = {t.lower(): t for t in KNOWN_SOURCE_TYPES}
# Prometheus-compatible APIs (grouped SLOs read only these)
PROMETHEUS_TYPES = frozenset({"Prometheus", "Thanos", "Mimir", "VictoriaMetrics"})
OPS = ", ".join(op.value for op in Op)


@dataclass(frozen=True)
class Meta:
    name: str
    display_name: str | None = None
    labels: dict[str, Any] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Ref:
    """A name that must match a document of some kind; `path` is where the name is written."""

    doc: Doc
    path: Path
    name: str


@dataclass(frozen=True)
class MetricDef:
    doc: Doc
    path: Path  # of `metricSource`
    ref: str | None
    type: str | None  # canonical slo-bot spelling
    spec: dict[str, Any]
    query: str


@dataclass(frozen=True)
class SliDef:
    name: str
    kind: IndicatorKind
    metrics: dict[str, MetricDef]  # role (good, bad, total, raw, threshold) -> metric
    counter: bool = True
    raw_type: str = "success"


def canonical_source_type(text: str) -> str | None:
    """`prometheus` -> `Prometheus`; None when slo-bot has no source of that type."""
    return _SOURCE_TYPES.get(text.lower())


def unknown_source_type(text: str) -> str:
    known = ", ".join(sorted(KNOWN_SOURCE_TYPES))
    return f"unknown data source type '{text}': slo-bot reads {known}"


def description(ck: Checker, spec: dict[str, Any], path: Path) -> str:
    text = ck.get_str(spec, "description", path) or ""
    if len(text) > 1050:
        ck.fail((*path, "description"), f"at most 1050 characters (got {len(text)})")
    return text


def parse_metadata(ck: Checker, parent: dict[str, Any], path: Path) -> Meta | None:
    meta = ck.get_map(parent, "metadata", path, allowed=_METADATA, required=True)
    if meta is None:
        return None
    mp = (*path, "metadata")
    name = ck.get_name(meta, "name", mp, required=True)
    display = ck.get_str(meta, "displayName", mp)
    labels = ck.get_map(meta, "labels", mp) or {}
    for key in labels:
        if not _LABEL_KEY.match(key):
            ck.fail(
                (*mp, "labels", key),
                "invalid label key: at most 63 letters, digits, '-', '_' or "
                "'.', starting and ending with a letter or digit",
            )
    annotations = ck.get_map(meta, "annotations", mp) or {}
    for key in annotations:
        prefix = key.rpartition("/")[0]
        if not _ANNOTATION_KEY.match(key) or len(prefix) > 253:
            ck.fail(
                (*mp, "annotations", key),
                "invalid annotation key: an optional DNS-subdomain "
                "prefix and '/', then a name of at most 63 letters, digits, '-', '_' or '.'",
            )
    check_annotations(ck, annotations, (*mp, "annotations"))
    if name is None:
        written = meta.get("name")
        if not isinstance(written, str) or not written.strip():
            return None
        name = written  # already reported: keep checking the rest of the document
    return Meta(name, display, dict(labels), {k: annotation_text(v) for k, v in annotations.items()})


def parse_metric(ck: Checker, parent: dict[str, Any], key: str, path: Path) -> MetricDef | None:
    """`{metricSource: {metricSourceRef | type, spec: {query, ...}}}` under `parent[key]`."""
    metric = ck.get_map(parent, key, path, allowed={"metricSource"}, required=True)
    if metric is None:
        return None
    mp = (*path, key)
    allowed = {"metricSourceRef", "type", "spec"}
    source = ck.get_map(metric, "metricSource", mp, allowed=allowed, required=True)
    if source is None:
        return None
    sp = (*mp, "metricSource")
    ref = ck.get_name(source, "metricSourceRef", sp)
    written_type = ck.get_str(source, "type", sp)
    source_type = None
    if written_type is not None:
        source_type = canonical_source_type(written_type)
        if source_type is None:
            ck.fail((*sp, "type"), unknown_source_type(written_type))
    elif ref is None and "metricSourceRef" not in source:
        ck.fail(sp, "needs metricSourceRef (the name of a DataSource) or type (e.g. Prometheus)")
    spec = ck.get_map(source, "spec", sp, required=True)
    if spec is None:
        return None
    query = spec.get("query")
    if query is None:
        ck.fail((*sp, "spec", "query"), f"{MISSING_QUERY}")
    elif not isinstance(query, str) or not query.strip():
        ck.fail((*sp, "spec", "query"), f"expected a query string, got {describe(query)}")
    if not isinstance(query, str) or (ref is None and source_type is None):
        return None
    return MetricDef(ck.doc, sp, ref, source_type, dict(spec), query)


MISSING_QUERY = "required field missing: every slo-bot source reads its query from spec.query"


def parse_sli_spec(ck: Checker, spec: dict[str, Any], path: Path, meta: Meta) -> SliDef | None:
    description(ck, spec, path)
    threshold, ratio = spec.get("thresholdMetric"), spec.get("ratioMetric")
    if threshold is not None and ratio is not None:
        ck.fail((*path, "ratioMetric"), "thresholdMetric and ratioMetric cannot be used together")
        return None
    if threshold is not None:
        metric = parse_metric(ck, spec, "thresholdMetric", path)
        if metric is None:
            return None
        return SliDef(meta.name, IndicatorKind.THRESHOLD, {"threshold": metric}, counter=False)
    if ratio is None:
        ck.fail(path, "needs ratioMetric or thresholdMetric")
        return None
    rm = ck.get_map(spec, "ratioMetric", path, allowed=_RATIO)
    if rm is None:
        return None
    rp = (*path, "ratioMetric")
    counter = ck.get_bool(rm, "counter", rp)
    raw_type = ck.get_str(rm, "rawType", rp)
    present = [role for role in ("good", "bad", "total", "raw") if rm.get(role) is not None]
    if "raw" in present:
        if len(present) > 1:
            ck.fail((*rp, "raw"), "raw cannot be used together with good, bad or total")
        if raw_type is None and "rawType" not in rm:
            ck.fail((*rp, "rawType"), "required field missing: raw needs rawType (success or failure)")
        elif raw_type is not None and raw_type not in ("success", "failure"):
            ck.fail((*rp, "rawType"), f"rawType must be success or failure, not '{raw_type}'")
    else:
        if raw_type is not None:
            ck.fail((*rp, "rawType"), "rawType is only used with raw")
        if "good" in present and "bad" in present:
            ck.fail((*rp, "bad"), "good and bad cannot be used together: give one of them")
        if "total" not in present:
            ck.fail(
                (*rp, "total"),
                "required field missing: ratioMetric needs total (with good or bad), or raw (with rawType)",
            )
        elif "good" not in present and "bad" not in present:
            ck.fail(rp, "needs good or bad beside total")
    metrics = {role: parse_metric(ck, rm, role, rp) for role in present}
    found = {role: metric for role, metric in metrics.items() if metric is not None}
    if "raw" in present:
        return SliDef(meta.name, IndicatorKind.RAW, found, False, raw_type or "success")
    return SliDef(meta.name, IndicatorKind.RATIO, found, True if counter is None else counter)


def parse_datasource_spec(ck: Checker, spec: dict[str, Any], path: Path, meta: Meta) -> DataSource | None:
    description(ck, spec, path)
    written = ck.get_str(spec, "type", path, required=True)
    source_type = None if written is None else canonical_source_type(written)
    if written is not None and source_type is None:
        ck.fail((*path, "type"), unknown_source_type(written))
    connection = spec.get("connectionDetails")
    if connection is not None and not isinstance(connection, dict):
        ck.fail((*path, "connectionDetails"), f"slo-bot needs a mapping, got {describe(connection)}")
        return None
    if source_type is None:
        return None
    if source_type in HTTP_SOURCES and isinstance(connection, dict):  # checked before any query
        for problem in HTTP_SOURCES[source_type].connection_problems(connection):
            field, _, message = problem.partition(": ")
            if "${" in str(connection.get(field, "")):
                continue  # an unset variable, reported as such
            ck.fail((*path, "connectionDetails", field), message or problem)
    return DataSource(meta.name, source_type, dict(connection or {}))


def parse_op(ck: Checker, mapping: dict[str, Any], path: Path) -> Op | None:
    text = ck.get_str(mapping, "op", path)
    if text is None:
        return None
    try:
        return Op(text)
    except ValueError:
        ck.fail((*path, "op"), f"op must be one of {OPS}, not '{text}'")
        return None
