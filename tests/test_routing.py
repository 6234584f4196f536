"""Which incident tools an alert goes to, and when and to whom an unacknowledged page escalates."""

from __future__ import annotations

from datetime import timedelta

import pytest

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
    Op,
    TimeWindow,
)
from bot.routing import (
    ESCALATE_AFTER,
    ONCALL_GROUP,
    all_incident_targets,
    escalate_after,
    incident_targets,
    oncall_group,
    target_names,
)

PD = NotificationTarget("pd", "pagerduty")
GENIE = NotificationTarget("genie", "Opsgenie")
SQUAD = NotificationTarget("squad", "squadcast")
HOOK = NotificationTarget("hook", "webhook")
MAIL = NotificationTarget("mail", "email")
PD_ESCALATING = NotificationTarget("pd", "pagerduty", annotations={ESCALATE_AFTER: "1m"})


def _policy(name: str, severity: str, *targets: NotificationTarget, **annotations: str) -> AlertPolicy:
    condition = AlertCondition(name, severity, Op.GT, 14.4, timedelta(hours=1), timedelta(0))
    return AlertPolicy(name, (condition,), targets, annotations=annotations)


def _slack(name: str, **annotations: str) -> NotificationTarget:
    return NotificationTarget(name, "slack", annotations=annotations)


def _slo(
    *policies: AlertPolicy,
    page_targets: tuple[NotificationTarget, ...] = (),
    notes: dict[str, str] | None = None,
) -> SLO:
    q = MetricQuery(DataSource("s", "Simulated"), "good")
    return SLO(
        "api",
        "svc",
        Indicator("i", IndicatorKind.RATIO, good=q, total=q),
        Objective(0.999),
        TimeWindow("30d", timedelta(days=30)),
        alert_policies=policies,
        page_targets=page_targets,
        annotations=notes or {},
    )


def _names(targets: list[NotificationTarget]) -> list[str]:
    return [t.name for t in targets]


def test_page_targets_follow_every_page_and_only_pages() -> None:
    slo = _slo(
        _policy("fast", "Page", _slack("chat"), GENIE, MAIL),
        _policy("slow", "ticket", HOOK),
        page_targets=(PD, GENIE),
    )
    # slack and email are not incident tools; a target named twice is sent to once
    assert _names(incident_targets(slo, "page")) == ["genie", "pd"]
    assert _names(incident_targets(slo, "ticket")) == ["hook"]
    assert _names(incident_targets(slo, "budget-25")) == []
    assert _names(all_incident_targets(slo)) == ["genie", "hook", "pd"]


def test_an_slo_without_policies_still_pages_its_page_targets() -> None:
    slo = _slo(page_targets=(SQUAD,))
    assert _names(incident_targets(slo, "page")) == ["squad"]
    assert _names(incident_targets(slo, "no-data")) == []
    assert _names(all_incident_targets(_slo())) == []


@pytest.mark.parametrize(
    ("slo", "page", "ticket"),
    [
        (_slo(), timedelta(minutes=15), timedelta(minutes=15)),
        (_slo(notes={ESCALATE_AFTER: "1h"}), timedelta(hours=1), timedelta(hours=1)),
        (
            _slo(
                _policy("fast", "page", **{ESCALATE_AFTER: "5m"}),
                _policy("slow", "ticket"),
                notes={ESCALATE_AFTER: "1h"},
            ),
            timedelta(minutes=5),
            timedelta(hours=1),
        ),
        (
            # the policy's own value, then its slack targets', then the next policy of the severity
            _slo(
                _policy("a", "page", _slack("c", **{ESCALATE_AFTER: "20m"})),
                _policy("b", "page", **{ESCALATE_AFTER: "5m"}),
            ),
            timedelta(minutes=20),
            timedelta(minutes=15),
        ),
        (
            # slack targets are read, not the incident tools'
            _slo(
                _policy("a", "page", PD_ESCALATING),
                _policy("b", "page", **{ESCALATE_AFTER: " 30m "}),
            ),
            timedelta(minutes=30),
            timedelta(minutes=15),
        ),
    ],
)
def test_escalate_after(slo: SLO, page: timedelta, ticket: timedelta) -> None:
    assert (escalate_after(slo, "page"), escalate_after(slo, "ticket")) == (page, ticket)


def test_oncall_group_policy_then_its_slack_targets_then_the_slo() -> None:
    slo = _slo(
        _policy("fast", "page", _slack("chat", **{ONCALL_GROUP: "S0CHAT"})),
        _policy("slow", "ticket", **{ONCALL_GROUP: "S0TICKETS"}),
        notes={ONCALL_GROUP: "S0SLO"},
    )
    assert oncall_group(slo, "page") == "S0CHAT"
    assert oncall_group(slo, "ticket") == "S0TICKETS"
    assert oncall_group(slo, "budget-0") == "S0SLO"
    assert oncall_group(_slo(), "page") is None
    # a value the catalogue would have rejected never becomes a mention
    assert oncall_group(_slo(notes={ONCALL_GROUP: "@oncall"}), "page") is None


def test_target_names() -> None:
    assert target_names(" pd, hooks,,pd , ") == ["pd", "hooks"]
    assert target_names("") == []
