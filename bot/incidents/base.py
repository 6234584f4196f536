"""The contract every incident tool keeps (PagerDuty, Opsgenie, Squadcast, webhooks), and how one fails."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

# What slo-bot tells an incident tool about one breach.
TRIGGER = "trigger"  # the breach opened (or someone declared an incident from Slack)
RAISE = "raise"  # its severity rose (a ticket became a page): the same incident, more severe
ACKNOWLEDGE = "acknowledge"
UNACKNOWLEDGE = "unacknowledge"
ESCALATE = "escalate"  # a page stayed unacknowledged past its escalation delay
RESOLVE = "resolve"
ACTIONS = (TRIGGER, RAISE, ACKNOWLEDGE, UNACKNOWLEDGE, ESCALATE, RESOLVE)

# AlertNotificationTarget `spec.target` values slo-bot delivers to, besides `slack`
INCIDENT_TARGET_KINDS = frozenset({"pagerduty", "opsgenie", "squadcast", "webhook"})


@dataclass(frozen=True)
class Incident:
    """One breach as an incident tool sees it."""

    dedup_key: str  # one per breach: "slo-bot/checkout-availability/42"
    slo: str
    service: str
    severity: str  # the breach's severity now: page or ticket
    summary: str  # one line, under 120 characters
    details: Mapping[str, Any] = field(default_factory=dict)  # burn rates, budget left, exhaustion ...
    links: tuple[tuple[str, str], ...] = ()  # (text, url): the Slack message, the dashboard


@dataclass(frozen=True)
class IncidentEvent:
    action: str  # one of ACTIONS
    incident: Incident
    at: datetime  # when it happened in slo-bot (UTC)
    actor: str | None = None  # who did it, readable ("ana (Slack)"); None: slo-bot itself
    note: str = ""
    id: str = ""  # unique per event and stable across retries of it (the outbox entry): for idempotency


@dataclass(frozen=True)
class Sent:
    """What the tool answered. `skipped`: the tool has no such action (Squadcast has no acknowledge)."""

    reference: str | None = None  # the tool's id for the request or the incident, when it gives one
    skipped: bool = False


class TargetError(Exception):
    """`str(err)` is written for the person reading the log."""


class TargetUnavailable(TargetError):
    """Timeout, connection failure, 5xx or 429: try again later. `retry_after` from the answer, if any."""

    def __init__(self, message: str, retry_after: timedelta | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TargetRejected(TargetError):
    """The tool refused the event (400, 401, 403, 404 ...): retrying will not help; a human must fix
    the target's settings."""


class IncidentTarget(Protocol):
    """One AlertNotificationTarget of an incident tool, ready to send."""

    def send(self, event: IncidentEvent) -> Sent: ...
