"""The catalogue as a whole: names indexed, references followed, SLOs built as domain objects."""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from bot import composite
from bot.annotations import GROUP_BY, INCIDENT_TARGETS, parse_group_by
from bot.catalogue.alerts import PolicyDef
from bot.catalogue.checks import Checker, report_at
from bot.catalogue.document import parse_document
from bot.catalogue.envsubst import substitute_tree
from bot.catalogue.model import Entry, Report
from bot.catalogue.openslo import PROMETHEUS_TYPES, MetricDef, Ref, SliDef
from bot.catalogue.origins import Doc, Path
from bot.catalogue.promql import grouping_problem
from bot.catalogue.slo import SloDef
from bot.domain import (
    SLO,
    AlertCondition,
    AlertPolicy,
    DataSource,
    Indicator,
    IndicatorKind,
    MetricQuery,
    NotificationTarget,
    Objective,
    Part,
)
from bot.incidents.base import INCIDENT_TARGET_KINDS
from bot.routing import is_incident_target, target_names
from bot.sources import HTTP_SOURCES

Index = dict[str, dict[str, tuple[Doc, Any]]]  # kind -> name -> (document, definition or None)
Used = dict[int, Doc]  # the documents an SLO reads, in the order first met


@dataclass(frozen=True)
class _Built:
    slo: SLO
    doc: Doc
    path: Path  # where the SLO's name comes from
    used: tuple[Doc, ...]


def compile_documents(docs: Sequence[Doc], env: Mapping[str, str], report: Report) -> list[Entry]:
    """Entries for every SLO whose documents (its own and those it refers to) have no problem."""
    index: Index = {}
    for doc in docs:
        ck = Checker(report, doc)
        doc.data = substitute_tree(doc.raw, env, ck.fail)
        parsed = parse_document(ck)
        if parsed is None:
            continue
        kind, name, definition = parsed
        named = index.setdefault(kind, {})
        if name in named:
            first = named[name][0]
            where = f"{first.file}:{first.locate(('metadata', 'name'))[0]}"
            ck.fail(("metadata", "name"), f"duplicate {kind} name '{name}' (first defined at {where})")
            continue
        named[name] = (doc, definition)
    resolver = _Resolver(report, index)
    # Dangling references inside documents no SLO uses are still problems.
    for sli in _definitions(index, "SLI"):
        resolver.indicator(sli, {})
    for policy in _definitions(index, "AlertPolicy"):
        resolver.policy(policy, {})
    built: list[_Built] = []
    for slo in _definitions(index, "SLO"):
        built.extend(resolver.slos(slo))
    seen: dict[str, _Built] = {}
    for b in built:
        other = seen.setdefault(b.slo.name, b)
        if other is not b:
            where = f"{other.doc.file}:{other.doc.locate(other.path)[0]}"
            report_at(report, b.doc, b.path, f"SLO name '{b.slo.name}' is already used ({where})")
    return [
        Entry(b.slo, tuple(copy.deepcopy(doc.raw) for doc in b.used))
        for b in built
        if not any(doc in report.bad for doc in b.used)
    ]


def _definitions(index: Index, kind: str) -> list[Any]:
    return [d for _, d in index.get(kind, {}).values() if d is not None]


def slug(text: str | None) -> str:
    return re.sub(r"[^a-z0-9]+", "-", (text or "").lower()).strip("-")


class _Resolver:
    def __init__(self, report: Report, index: Index) -> None:
        self.report = report
        self.index = index

    def _lookup(self, kind: str, ref: Ref, used: Used) -> Any:
        named = self.index.get(kind, {})
        if ref.name not in named:
            names = sorted(named)
            known = "none defined" if not names else "known: " + ", ".join(names[:20])
            if len(names) > 20:
                known += ", ..."
            report_at(self.report, ref.doc, ref.path, f"no {kind} named '{ref.name}' ({known})")
            return None
        doc, definition = named[ref.name]
        used.setdefault(id(doc), doc)
        return definition

    def metric(self, metric: MetricDef, used: Used) -> MetricQuery | None:
        if metric.ref is None:
            assert metric.type is not None  # parse_metric returns no metric without either
            source = DataSource(metric.type, metric.type, {})
        else:
            ref = Ref(metric.doc, (*metric.path, "metricSourceRef"), metric.ref)
            source = self._lookup("DataSource", ref, used)
            if source is None:
                return None
            if metric.type is not None and metric.type != source.type:
                report_at(
                    self.report,
                    metric.doc,
                    (*metric.path, "type"),
                    f"type {metric.type} differs from DataSource '{metric.ref}' ({source.type})",
                )
                return None
        return MetricQuery(source, metric.query, metric.spec)

    def indicator(self, sli: SliDef | Ref, used: Used) -> Indicator | None:
        definition = self._lookup("SLI", sli, used) if isinstance(sli, Ref) else sli
        if definition is None:
            return None
        queries = {role: self.metric(m, used) for role, m in definition.metrics.items()}
        if any(q is None for q in queries.values()):
            return None
        refused = False
        for role, metric in definition.metrics.items():
            query = queries[role]
            if query is None or query.source.type not in HTTP_SOURCES:
                continue
            problem = HTTP_SOURCES[query.source.type].query_problem(query.query, counter=definition.counter)
            if problem is not None:
                report_at(self.report, metric.doc, (*metric.path, "spec", "query"), problem)
                refused = True
        if refused:
            return None
        return Indicator(
            name=definition.name,
            kind=definition.kind,
            counter=definition.counter,
            good=queries.get("good"),
            bad=queries.get("bad"),
            total=queries.get("total"),
            raw=queries.get("raw"),
            raw_type=definition.raw_type,
            threshold=queries.get("threshold"),
        )

    def policy(self, policy: PolicyDef | Ref, used: Used) -> AlertPolicy | None:
        definition = self._lookup("AlertPolicy", policy, used) if isinstance(policy, Ref) else policy
        if definition is None:
            return None
        conditions: list[AlertCondition | None] = [
            self._lookup("AlertCondition", c, used) if isinstance(c, Ref) else c
            for c in definition.conditions
        ]
        targets: list[NotificationTarget | None] = [
            self._lookup("AlertNotificationTarget", t, used) if isinstance(t, Ref) else t
            for t in definition.targets
        ]
        if None in conditions or None in targets:
            return None
        flags = definition.flags
        return AlertPolicy(
            name=definition.meta.name,
            conditions=tuple(c for c in conditions if c is not None),
            targets=tuple(t for t in targets if t is not None),
            alert_when_no_data=flags.get("alertWhenNoData", False),
            alert_when_resolved=flags.get("alertWhenResolved", True),
            alert_when_breaching=flags.get("alertWhenBreaching", True),
            annotations=definition.meta.annotations,
        )

    def page_targets(self, slo: SloDef, used: Used) -> tuple[NotificationTarget, ...] | None:
        """The AlertNotificationTargets the SLO's `slo-bot/incident-targets` names; None if one is wrong."""
        text = slo.meta.annotations.get(INCIDENT_TARGETS)
        if text is None or "${" in text:  # an unset variable: reported already
            return () if text is None else None
        path = ("metadata", "annotations", INCIDENT_TARGETS)
        found: list[NotificationTarget | None] = []
        for name in target_names(text):
            target = self._lookup("AlertNotificationTarget", Ref(slo.doc, path, name), used)
            if target is not None and not is_incident_target(target):
                kinds = ", ".join(sorted(INCIDENT_TARGET_KINDS))
                message = f"'{name}' is a {target.target} target: slo-bot pages only {kinds} targets"
                report_at(self.report, slo.doc, path, message)
                target = None
            found.append(target)
        return tuple(t for t in found if t is not None) if None not in found else None

    def groupable(self, slo: SloDef, indicators: Sequence[Indicator]) -> bool:
        """A grouped SLO (`slo-bot/group-by`) reads Prometheus-compatible sources with queries whose
        aggregations can keep the group's labels; False (and reported) otherwise."""
        text = slo.meta.annotations.get(GROUP_BY)
        if text is None or "${" in text:
            return True
        try:
            labels = parse_group_by(text)
        except ValueError:
            return True  # reported with the other annotations
        path = ("metadata", "annotations", GROUP_BY)
        if any(o.indicator is not None for o in slo.objectives):
            report_at(self.report, slo.doc, path, "a composite SLO cannot be grouped (its parts are fixed)")
            return False
        problems: list[str] = []
        for indicator in indicators:
            for metric in (
                indicator.good,
                indicator.bad,
                indicator.total,
                indicator.raw,
                indicator.threshold,
            ):
                if metric is None:
                    continue
                if metric.source.type not in PROMETHEUS_TYPES:
                    problems.append(
                        f"grouped SLOs read Prometheus-compatible sources only; DataSource "
                        f"'{metric.source.name}' is {metric.source.type}"
                    )
                    continue
                problem = grouping_problem(metric.query, labels, counter=indicator.counter)
                if problem is not None:
                    problems.append(problem)
        for problem in dict.fromkeys(problems):
            report_at(self.report, slo.doc, path, problem)
        return not problems

    def slos(self, slo: SloDef) -> list[_Built]:
        """One SLO per objective: `name` alone, or `name-<displayName or index>` when several."""
        used: Used = {id(slo.doc): slo.doc}
        service = self.index.get("Service", {}).get(slo.service)
        if service is not None:
            used.setdefault(id(service[0]), service[0])
        # Followed even when no objective is usable, so a dangling indicatorRef is still reported.
        shared = None if slo.indicator is None else self.indicator(slo.indicator, used)
        ok = bool(slo.objectives)
        indicators: list[Indicator | None] = []
        for o in slo.objectives:
            indicator = shared if o.indicator is None else self.indicator(o.indicator, used)
            indicators.append(indicator)
            if indicator is None:
                ok = False
            elif indicator.kind is IndicatorKind.THRESHOLD:
                for key, value in (("op", o.objective.op), ("value", o.objective.value)):
                    if value is None:
                        report_at(
                            self.report,
                            slo.doc,
                            (*o.path, key),
                            "required field missing: objectives of a thresholdMetric SLI need op and value",
                        )
                        ok = False
        policies = [self.policy(p, used) for p in slo.policies]
        page_targets = self.page_targets(slo, used)
        if ok and not self.groupable(slo, [i for i in indicators if i is not None]):
            ok = False
        if not ok or None in policies or page_targets is None:
            return []
        meta = slo.meta
        if any(o.indicator is not None for o in slo.objectives):
            built_one = self.composite(slo, [i for i in indicators if i is not None], policies, page_targets)
            return [_Built(built_one, slo.doc, ("metadata", "name"), tuple(used.values()))]
        several = len(slo.objectives) > 1
        built = []
        for i, (o, indicator) in enumerate(zip(slo.objectives, indicators, strict=True)):
            assert indicator is not None
            name = f"{meta.name}-{slug(o.objective.display_name) or i}" if several else meta.name
            result = SLO(
                name=name,
                service=slo.service,
                indicator=indicator,
                objective=o.objective,
                window=slo.window,
                budgeting_method=slo.method,
                alert_policies=tuple(p for p in policies if p is not None),
                page_targets=page_targets,
                display_name=meta.display_name,
                description=slo.description,
                annotations=meta.annotations,
                labels=meta.labels,
            )
            path = o.path if several else ("metadata", "name")
            built.append(_Built(result, slo.doc, path, tuple(used.values())))
        return built

    def composite(
        self,
        slo: SloDef,
        indicators: Sequence[Indicator],
        policies: Sequence[AlertPolicy | None],
        page_targets: tuple[NotificationTarget, ...],
    ) -> SLO:
        """One SLO whose objectives are its weighted parts (`bot.composite`), each an SLO of its own
        named `name[part]` after its displayName or its indicator's name."""
        meta = slo.meta
        labels = [
            slug(o.objective.display_name) or i.name for o, i in zip(slo.objectives, indicators, strict=True)
        ]
        if len(set(labels)) < len(labels):
            labels = [f"{label}-{n}" if labels.count(label) > 1 else label for n, label in enumerate(labels)]
        base = SLO(
            name=meta.name,
            service=slo.service,
            indicator=indicators[0],  # a composite reads none of its own: its parts' are read
            objective=slo.objectives[0].objective,
            window=slo.window,
            budgeting_method=slo.method,
            alert_policies=tuple(p for p in policies if p is not None),
            page_targets=page_targets,
            display_name=meta.display_name,
            description=slo.description,
            annotations=meta.annotations,
            labels=meta.labels,
        )
        parts = tuple(
            Part(
                replace(
                    base,
                    name=f"{meta.name}[{label}]",
                    indicator=i,
                    objective=o.objective,
                    member_of=meta.name,
                ),
                o.weight if o.weight is not None else 1.0,
            )
            for o, i, label in zip(slo.objectives, indicators, labels, strict=True)
        )
        target = composite.target_ratio([(p.weight, p.slo.objective.target_ratio) for p in parts])
        first = slo.objectives[0].objective
        objective = Objective(
            target,
            timeslice_window=first.timeslice_window,
            timeslice_target_ratio=first.timeslice_target_ratio,
        )
        return replace(base, objective=objective, parts=parts)
