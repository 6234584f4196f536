"""Where an SLO's alerts go besides Slack, and when an unacknowledged page escalates.

Pure reads of the catalogue's domain objects and their `slo-bot/` annotations.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import timedelta

from bot.annotations import (
    ESCALATE_AFTER,
    ONCALL_GROUP,
    parse_escalate_after,
    parse_list,
    parse_oncall_group,
)
from bot.domain import SLO, AlertPolicy, NotificationTarget
from bot.incidents.base import INCIDENT_TARGET_KINDS
from bot.policy import PAGE, SEVERITIES

DEFAULT_ESCALATE_AFTER = timedelta(minutes=15)


def target_names(text: str) -> list[str]:
    """`"pd, hooks"` -> `["pd", "hooks"]`: the names an `slo-bot/incident-targets` annotation gives."""
    return parse_list(text)


def is_incident_target(target: NotificationTarget) -> bool:
    return target.target.strip().lower() in INCIDENT_TARGET_KINDS


def policies_for(slo: SLO, severity: str) -> list[AlertPolicy]:
    """The SLO's AlertPolicies with a condition of `severity` (compared lowercased)."""
    wanted = severity.lower()
    return [
        p
        for p in slo.alert_policies
        if any(SEVERITIES.get(c.severity.lower(), c.severity.lower()) == wanted for c in p.conditions)
    ]


def incident_targets(slo: SLO, severity: str) -> list[NotificationTarget]:
    """The incident tools an alert of `severity` goes to: the targets of its AlertPolicies, and for a
    page also the SLO's `page_targets`. Slack and targets slo-bot does not deliver to are left out."""
    found = [t for p in policies_for(slo, severity) for t in p.targets]
    if severity.lower() == PAGE:
        found.extend(slo.page_targets)
    return _once([t for t in found if is_incident_target(t)])


def all_incident_targets(slo: SLO) -> list[NotificationTarget]:
    """Every incident tool of the SLO, whatever the severity: where "Declare incident" may go."""
    found = [t for p in slo.alert_policies for t in p.targets]
    found.extend(slo.page_targets)
    return _once([t for t in found if is_incident_target(t)])


def escalate_after(slo: SLO, severity: str) -> timedelta:
    """How long an alert of `severity` may stay unacknowledged before it is escalated.

    The first `slo-bot/escalate-after` found on an AlertPolicy of that severity (or on a slack target
    of it), else the SLO's, else 15 minutes.
    """
    for text in _settings(slo, severity, ESCALATE_AFTER):
        try:
            return parse_escalate_after(text)
        except ValueError:
            continue  # the catalogue refuses such a value; never let one stop an escalation
    return DEFAULT_ESCALATE_AFTER


def oncall_group(slo: SLO, severity: str) -> str | None:
    """The Slack user group an escalated alert of `severity` mentions (`S0123ABCD`), if any.

    Looked up like `escalate_after`: its AlertPolicies, their slack targets, then the SLO.
    """
    for text in _settings(slo, severity, ONCALL_GROUP):
        try:
            return parse_oncall_group(text)
        except ValueError:
            continue  # refused by the catalogue, as above
    return None


def _settings(slo: SLO, severity: str, key: str) -> Iterator[str]:
    """The annotation `key`, most specific first, as written (stripped, blank ones skipped)."""
    sources: list[NotificationTarget | AlertPolicy | SLO] = []
    for policy in policies_for(slo, severity):
        sources.append(policy)
        sources.extend(t for t in policy.targets if t.target.strip().lower() == "slack")
    sources.append(slo)
    for source in sources:
        text = source.annotations.get(key, "").strip()
        if text:
            yield text


def _once(targets: Iterable[NotificationTarget]) -> list[NotificationTarget]:
    """The first target of each name, in order."""
    first: dict[str, NotificationTarget] = {}
    for target in targets:
        first.setdefault(target.name, target)
    return list(first.values())
