"""One OpenSLO v1 document: apiVersion, kind and metadata checked, the spec read by its kind."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bot.catalogue.alerts import parse_condition_spec, parse_policy_spec, parse_target_spec
from bot.catalogue.checks import Checker, describe
from bot.catalogue.openslo import (
    API_VERSION,
    KINDS,
    SPEC_FIELDS,
    Meta,
    description,
    parse_datasource_spec,
    parse_metadata,
    parse_sli_spec,
)
from bot.catalogue.origins import Path
from bot.catalogue.slo import parse_slo_spec

_DOCUMENT = frozenset({"apiVersion", "kind", "metadata", "spec"})
_PARSERS: dict[str, Callable[[Checker, dict[str, Any], Path, Meta], Any]] = {
    "SLO": parse_slo_spec,
    "SLI": parse_sli_spec,
    "DataSource": parse_datasource_spec,
    "AlertPolicy": parse_policy_spec,
    "AlertCondition": parse_condition_spec,
    "AlertNotificationTarget": parse_target_spec,
}


def parse_document(ck: Checker) -> tuple[str, str, Any] | None:
    """`(kind, name, definition)`, or None when the document cannot even be named.

    A document with problems still gives its name, so references to it do not also show up as
    dangling, and a best-effort definition (None if there is too little to go on), so its own
    references are still checked. Its problems (`Report.bad`) keep it out of the entries.
    """
    data = ck.doc.data
    if not isinstance(data, dict):
        ck.fail((), f"expected an OpenSLO document (a mapping), got {describe(data)}")
        return None
    ck.only(data, (), _DOCUMENT)
    version = ck.get_str(data, "apiVersion", (), required=True)
    if version is not None and version != API_VERSION:
        ck.fail(("apiVersion",), f"unsupported apiVersion '{version}': slo-bot reads {API_VERSION}")
    kind = ck.get_str(data, "kind", (), required=True)
    if kind is None:
        return None
    if kind not in KINDS:
        ck.fail(("kind",), f"unknown kind '{kind}' (OpenSLO v1 kinds: {', '.join(KINDS)})")
        return None
    meta = parse_metadata(ck, data, ())
    if meta is None:
        return None
    if version != API_VERSION:
        return kind, meta.name, None  # another schema: reading its spec would only add noise
    # OpenSLO's Service is all metadata: its spec (a description) may be left out.
    spec = ck.get_map(data, "spec", (), allowed=SPEC_FIELDS[kind], required=kind != "Service")
    if kind == "Service":
        if spec is not None:
            description(ck, spec, ("spec",))
        definition: Any = meta
    elif spec is None:
        return kind, meta.name, None
    else:
        definition = _PARSERS[kind](ck, spec, ("spec",), meta)
    return kind, meta.name, definition
