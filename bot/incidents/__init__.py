"""Incident tools: the registry maps a notification target's `spec.target` to its implementation."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from bot.domain import NotificationTarget
from bot.incidents.base import (
    ACKNOWLEDGE,
    ACTIONS,
    ESCALATE,
    INCIDENT_TARGET_KINDS,
    RESOLVE,
    TRIGGER,
    UNACKNOWLEDGE,
    Incident,
    IncidentEvent,
    IncidentTarget,
    Sent,
    TargetError,
    TargetRejected,
    TargetUnavailable,
)
from bot.incidents.opsgenie import OpsgenieTarget
from bot.incidents.pagerduty import PagerDutyTarget
from bot.incidents.squadcast import SquadcastTarget
from bot.incidents.webhook import WebhookTarget

if TYPE_CHECKING:
    import httpx

# Every target takes an httpx.Client built by the composition root (`bot.service`).
TARGETS: dict[str, Callable[[NotificationTarget, httpx.Client], IncidentTarget]] = {
    "pagerduty": PagerDutyTarget,
    "opsgenie": OpsgenieTarget,
    "squadcast": SquadcastTarget,
    "webhook": WebhookTarget,
}

assert set(TARGETS) == INCIDENT_TARGET_KINDS


def make_target(target: NotificationTarget, client: httpx.Client) -> IncidentTarget:
    """The ready-to-send target for `target`; TargetRejected for a kind slo-bot does not deliver to,
    or a missing or malformed annotation (the message names the target and the annotation)."""
    factory = TARGETS.get(target.target.strip().lower())
    if factory is None:
        kinds = ", ".join(sorted(TARGETS))
        raise TargetRejected(
            f"notification target {target.name!r}: slo-bot cannot deliver to {target.target!r} "
            f"(it knows {kinds})"
        )
    return factory(target, client)


__all__ = [
    "ACKNOWLEDGE",
    "ACTIONS",
    "ESCALATE",
    "INCIDENT_TARGET_KINDS",
    "RESOLVE",
    "TARGETS",
    "TRIGGER",
    "UNACKNOWLEDGE",
    "Incident",
    "IncidentEvent",
    "IncidentTarget",
    "Sent",
    "TargetError",
    "TargetRejected",
    "TargetUnavailable",
    "make_target",
]
