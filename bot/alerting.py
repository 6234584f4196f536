"""Alert lifecycle: how a policy signal moves an SLO's alert between pending, firing and resolved.

Pure: the open alert and a signal in, the new open alert and at most one transition out. The scheduler
(through the store) and `replay` (in memory) drive the same function.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from bot.policy import Signal

PENDING = "pending"
FIRING = "firing"
RESOLVED = "resolved"


@dataclass(frozen=True)
class OpenAlert:
    key: str
    state: str  # pending | firing
    since: datetime  # pending since, or fired at


@dataclass(frozen=True)
class Transition:
    at: datetime
    slo: str
    key: str
    event: str  # firing | resolved
    burn_rates: Mapping[str, float | None] = field(default_factory=dict)
    reason: str = ""
    fired_at: datetime | None = None  # for a resolution: when the alert fired


def step(
    slo: str, current: OpenAlert | None, signal: Signal, at: datetime
) -> tuple[OpenAlert | None, Transition | None]:
    """Advance one alert. A signal that cannot tell (no data) keeps the alert as it is."""
    if signal.active is None:
        return current, None
    if signal.active:
        if current is None:
            if signal.alert_after:
                return OpenAlert(signal.key, PENDING, at), None
            return OpenAlert(signal.key, FIRING, at), _transition(slo, signal, at, FIRING)
        if current.state == PENDING and at - current.since >= signal.alert_after:
            return OpenAlert(signal.key, FIRING, at), _transition(slo, signal, at, FIRING)
        return current, None
    if signal.hold and current is not None:
        return current, None  # inside the hysteresis band: neither fires nor resolves
    if current is None or current.state == PENDING:
        return None, None  # a pending alert was never announced: it just goes away
    return None, _transition(slo, signal, at, RESOLVED, fired_at=current.since)


def _transition(
    slo: str, signal: Signal, at: datetime, event: str, fired_at: datetime | None = None
) -> Transition:
    return Transition(at, slo, signal.key, event, dict(signal.burn_rates), signal.reason, fired_at)
