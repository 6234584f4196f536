"""Sloth specs (`version: prometheus/v1`, or the PrometheusServiceLevel CRD) as OpenSLO v1 docs.

Each Sloth SLO becomes an SLO named `<service>-<slo>` over a 30-day rolling window (Sloth's period),
counting occurrences; its queries keep Sloth's `{{.window}}`, which the Prometheus source fills in.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.catalogue.checks import MISSING, Checker
from bot.catalogue.openslo import API_VERSION
from bot.catalogue.origins import Doc, Origins, Path

CRD_API_VERSION = "sloth.slok.dev/v1"
SLOTH_VERSION = "prometheus/v1"
DATASOURCE = "prometheus"  # the DataSource every imported SLO reads
URL_VARIABLE = "SLO_BOT_PROMETHEUS_URL"
DEFAULT_URL = "http://127.0.0.1:9090"

_PLAIN = ("version", "service", "labels", "slos")
_CRD = ("apiVersion", "kind", "metadata", "spec")
_SLO = ("name", "objective", "description", "labels", "sli", "alerting")


def is_sloth(data: Any) -> bool:
    if not isinstance(data, dict):
        return False
    version = data.get("apiVersion")
    if version is None:
        return "version" in data
    return isinstance(version, str) and version.startswith("sloth.slok.dev/")


def datasource_name(data: Any) -> str | None:
    """The name of an OpenSLO DataSource document, as written."""
    if isinstance(data, dict) and data.get("kind") == "DataSource":
        metadata = data.get("metadata")
        if isinstance(metadata, dict) and isinstance(metadata.get("name"), str):
            return str(metadata["name"])
    return None


def prometheus_datasource(env: Mapping[str, str], anchor: Doc) -> Doc:
    """The DataSource imported SLOs read when the catalogue defines none named `prometheus`."""
    url = env.get(URL_VARIABLE) or DEFAULT_URL
    raw = {
        "apiVersion": API_VERSION,
        "kind": "DataSource",
        "metadata": {"name": DATASOURCE, "annotations": {"slo-bot/generated-for": "sloth"}},
        # The resolved URL, escaped: `${` in it is text, not a variable.
        "spec": {"type": "Prometheus", "connectionDetails": {"url": url.replace("${", "$${")}},
    }
    return Doc(anchor.file, raw, origins={(): (anchor.locate(())[0], "-")})


def convert(ck: Checker) -> list[Doc]:
    """The OpenSLO SLO documents of one Sloth document; problems point at the Sloth text."""
    data: dict[str, Any] = ck.doc.raw
    crd = "apiVersion" in data
    base: Path = ("spec",) if crd else ()
    if crd:
        ck.only(data, (), _CRD)
        if data["apiVersion"] != CRD_API_VERSION:
            ck.fail(
                ("apiVersion",),
                f"unsupported Sloth apiVersion '{data['apiVersion']}': slo-bot reads {CRD_API_VERSION}",
            )
        kind = ck.get_str(data, "kind", (), required=True)
        if kind is not None and kind != "PrometheusServiceLevel":
            ck.fail(("kind",), f"unknown Sloth kind '{kind}': expected PrometheusServiceLevel")
        body = ck.get_map(data, "spec", (), allowed=("service", "labels", "slos"), required=True)
    else:
        ck.only(data, (), _PLAIN)
        version = ck.get_str(data, "version", (), required=True)
        if version is not None and version != SLOTH_VERSION:
            ck.fail(
                ("version",),
                f"unsupported Sloth version '{version}': slo-bot reads {SLOTH_VERSION}",
            )
        body = data
    if body is None:
        return []
    service = ck.get_str(body, "service", base, required=True)
    labels = ck.get_map(body, "labels", base) or {}
    slos = ck.get_list(body, "slos", base, required=True)
    if slos is not None and not slos:
        ck.fail((*base, "slos"), "needs at least one SLO")
    docs = []
    for i, item in enumerate(slos or []):
        doc = _convert_slo(ck, item, (*base, "slos", i), service, labels, crd)
        if doc is not None:
            docs.append(doc)
    return docs if service is not None else []


def _convert_slo(
    ck: Checker, item: Any, path: Path, service: str | None, labels: dict[str, Any], crd: bool
) -> Doc | None:
    before = ck.count
    slo = ck.mapping(item, path, _SLO)
    if slo is None:
        return None
    name = ck.get_str(slo, "name", path, required=True)
    objective = ck.get_number(slo, "objective", path, required=True)
    if objective is not None and not 0 < objective < 100:
        ck.fail(
            (*path, "objective"),
            f"objective is a percentage greater than 0 and less than 100 (e.g. 99.9), got {objective:g}",
        )
    text = ck.get_str(slo, "description", path)
    merged = {**labels, **(ck.get_map(slo, "labels", path) or {})}
    ck.get_map(slo, "alerting", path)  # slo-bot alerts by its own policy; Sloth's settings are unused
    sli = ck.get_map(slo, "sli", path, allowed=("events", "raw", "plugin"), required=True)
    if sli is None:
        return None
    sp = (*path, "sli")
    kinds = [key for key in ("events", "raw", "plugin") if sli.get(key) is not None]
    if "plugin" in sli:
        plugin = sli["plugin"]
        name = plugin.get("id") if isinstance(plugin, dict) else None
        which = f" (plugin '{name}')" if isinstance(name, str) and name else ""
        ck.fail(
            (*sp, "plugin"),
            f"Sloth SLI plugins are not supported{which}: slo-bot runs no plugin code; write the "
            "queries the plugin builds as events (error_query, total_query) or raw (error_ratio_query)",
        )
    if len(kinds) > 1:
        ck.fail(sp, "give exactly one of events or raw")
    elif not kinds:
        ck.fail(sp, "needs events (error_query and total_query) or raw (error_ratio_query)")
    origins: Origins = {
        (): _origin(ck, path),
        ("spec", "objectives"): _origin(ck, (*path, "objective")),
    }
    ratio: dict[str, Any] = {}
    ratio_path = ("spec", "indicator", "spec", "ratioMetric")
    if kinds == ["events"]:
        events = ck.get_map(sli, "events", sp, allowed=_spellings("error_query", "total_query"))
        ratio["counter"] = True
        for role, key in (("bad", "error_query"), ("total", "total_query")):
            query, where = _query(ck, events, (*sp, "events"), key, crd)
            ratio[role] = _metric(query)
            origins[(*ratio_path, role)] = _origin(ck, where)
    elif kinds == ["raw"]:
        raw = ck.get_map(sli, "raw", sp, allowed=_spellings("error_ratio_query"))
        query, where = _query(ck, raw, (*sp, "raw"), "error_ratio_query", crd)
        ratio.update(rawType="failure", raw=_metric(query))
        origins[(*ratio_path, "raw")] = _origin(ck, where)
    if ck.count != before or service is None or name is None or objective is None:
        return None
    full_name = f"{service}-{name}"
    base = path[:-2]
    origins[("metadata",)] = origins[("metadata", "name")] = _origin(ck, (*path, "name"))
    labels_at = (*path, "labels") if slo.get("labels") is not None else (*base, "labels")
    origins[("metadata", "labels")] = _origin(ck, labels_at)
    origins[("spec", "description")] = _origin(ck, (*path, "description"))
    origins[("spec", "service")] = _origin(ck, (*base, "service"))
    metadata: dict[str, Any] = {
        "name": full_name,
        "displayName": name,
        "annotations": {"slo-bot/imported-from": "sloth"},
    }
    if merged:
        metadata["labels"] = merged
    spec: dict[str, Any] = {
        "service": service,
        "indicator": {"metadata": {"name": full_name}, "spec": {"ratioMetric": ratio}},
        "timeWindow": [{"duration": "30d", "isRolling": True}],
        "budgetingMethod": "Occurrences",
        "objectives": [{"targetPercent": objective}],
    }
    if text:
        spec["description"] = text
    raw_doc = {"apiVersion": API_VERSION, "kind": "SLO", "metadata": metadata, "spec": spec}
    return Doc(ck.doc.file, raw_doc, origins=origins)


def _spellings(*keys: str) -> tuple[str, ...]:
    """Plain Sloth files write `error_query`, the CRD `errorQuery`: both are read in either form."""
    return keys + tuple(_camel(key) for key in keys)


def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(part.title() for part in rest)


def _query(ck: Checker, mapping: dict[str, Any] | None, path: Path, key: str, crd: bool) -> tuple[str, Path]:
    if mapping is None:
        return "", path
    for spelling in (key, _camel(key)):
        if mapping.get(spelling) is not None:
            query = ck.get_str(mapping, spelling, path, required=True)
            return query or "", (*path, spelling)
    ck.fail((*path, _camel(key) if crd else key), MISSING)
    return "", path


def _metric(query: str) -> dict[str, Any]:
    return {"metricSource": {"metricSourceRef": DATASOURCE, "spec": {"query": query}}}


def _origin(ck: Checker, path: Path) -> tuple[int, str | None]:
    return ck.doc.locate(path)
