"""The alerting kinds of OpenSLO v1: AlertPolicy, AlertCondition, AlertNotificationTarget.

Each may be its own document or written inline where it is used; `inline_or_ref` reads either form.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from bot.catalogue.checks import Checker
from bot.catalogue.openslo import SPEC_FIELDS, Meta, Ref, description, parse_metadata, parse_op
from bot.catalogue.origins import Path
from bot.catalogue.settings import check_target
from bot.domain import AlertCondition, NotificationTarget, Op
from bot.policy import alert_severity

_INLINE = frozenset({"kind", "metadata", "spec"})
_CONDITION = frozenset({"kind", "op", "threshold", "lookbackWindow", "alertAfter"})


@dataclass(frozen=True)
class PolicyDef:
    meta: Meta
    conditions: tuple[AlertCondition | Ref, ...]
    targets: tuple[NotificationTarget | Ref, ...]
    flags: dict[str, bool]


def parse_condition_spec(ck: Checker, spec: dict[str, Any], path: Path, meta: Meta) -> AlertCondition | None:
    description(ck, spec, path)
    severity = ck.get_str(spec, "severity", path, required=True)
    if severity is not None:
        try:
            severity = alert_severity(severity)  # stored as page or ticket, whatever was written
        except ValueError as err:
            ck.fail((*path, "severity"), str(err))
            severity = None
    condition = ck.get_map(spec, "condition", path, allowed=_CONDITION, required=True)
    if condition is None:
        return None
    cp = (*path, "condition")
    kind = ck.get_str(condition, "kind", cp)
    if kind is not None and kind != "burnrate":
        ck.fail((*cp, "kind"), f"unsupported condition kind '{kind}': OpenSLO v1 defines only burnrate")
    op = parse_op(ck, condition, cp)
    threshold = ck.get_number(condition, "threshold", cp, required=True)
    lookback = ck.get_duration(condition, "lookbackWindow", cp, required=True)
    after = ck.get_duration(condition, "alertAfter", cp, zero_ok=True)
    if severity is None or threshold is None or lookback is None:
        return None
    # A burn rate alert fires when the burn exceeds the threshold: `gt` unless written otherwise.
    return AlertCondition(
        meta.name,
        severity,
        op or Op.GT,
        threshold,
        lookback[1],
        after[1] if after else timedelta(0),
    )


def parse_target_spec(ck: Checker, spec: dict[str, Any], path: Path, meta: Meta) -> NotificationTarget | None:
    text = description(ck, spec, path)
    target = ck.get_str(spec, "target", path, required=True)
    if target is None:
        return None
    check_target(ck, target, meta.annotations, path[:-1])
    return NotificationTarget(meta.name, target, text, meta.annotations)


def parse_policy_spec(ck: Checker, spec: dict[str, Any], path: Path, meta: Meta) -> PolicyDef | None:
    description(ck, spec, path)
    flags: dict[str, bool] = {}
    for key in ("alertWhenNoData", "alertWhenResolved", "alertWhenBreaching"):
        value = ck.get_bool(spec, key, path)
        if value is not None:
            flags[key] = value
    conditions = ck.get_list(spec, "conditions", path, required=True) or []
    if len(conditions) > 1:
        ck.fail(
            (*path, "conditions"),
            f"OpenSLO v1 allows one condition per AlertPolicy (got "
            f"{len(conditions)}): write one AlertPolicy per condition",
        )
    elif "conditions" in spec and not conditions:
        ck.fail((*path, "conditions"), "needs one condition")
    conds = [
        inline_or_ref(ck, item, (*path, "conditions", i), "conditionRef", "AlertCondition")
        for i, item in enumerate(conditions)
    ]
    targets = [
        inline_or_ref(ck, item, (*path, "notificationTargets", i), "targetRef", "AlertNotificationTarget")
        for i, item in enumerate(ck.get_list(spec, "notificationTargets", path) or [])
    ]
    return PolicyDef(meta, tuple(c for c in conds if c), tuple(t for t in targets if t), flags)


def inline_or_ref(ck: Checker, item: Any, path: Path, ref_key: str, kind: str) -> Any:
    """`{<ref_key>: name}` -> Ref, or an inline `{kind, metadata, spec}` -> its definition."""
    mapping = ck.mapping(item, path)
    if mapping is None:
        return None
    inline = [key for key in _INLINE if key in mapping]
    if ref_key in mapping:
        if inline:
            ck.fail(path, f"use either {ref_key} or an inline {kind}, not both")
            return None
        ck.only(mapping, path, {ref_key})
        name = ck.get_name(mapping, ref_key, path, required=True)
        return None if name is None else Ref(ck.doc, (*path, ref_key), name)
    ck.only(mapping, path, {ref_key, *_INLINE})
    if not inline:
        ck.fail(
            path,
            f"needs {ref_key} (the name of an {kind}) or an inline {kind} (kind, metadata, spec)",
        )
        return None
    written = ck.get_str(mapping, "kind", path, required=True)
    if written is not None and written != kind:
        ck.fail((*path, "kind"), f"expected kind {kind} here, not '{written}'")
    meta = parse_metadata(ck, mapping, path)
    spec = ck.get_map(mapping, "spec", path, allowed=SPEC_FIELDS[kind], required=True)
    if meta is None or spec is None:
        return None
    parse = {
        "AlertPolicy": parse_policy_spec,
        "AlertCondition": parse_condition_spec,
        "AlertNotificationTarget": parse_target_spec,
    }[kind]
    return parse(ck, spec, (*path, "spec"), meta)
