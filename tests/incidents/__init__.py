"""Builders shared by the incident target tests: incidents, events, target settings, mocked clients."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import httpx

from bot.domain import NotificationTarget
from bot.incidents import Incident, IncidentEvent

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
SLACK_LINK = ("Slack thread", "https://example.slack.com/archives/C0ALERTS/p1714564800000100")
DASHBOARD_LINK = ("Dashboard", "https://grafana.example.com/d/checkout")


def incident(severity: str = "page", **changes: Any) -> Incident:
    fields: dict[str, Any] = {
        "dedup_key": "slo-bot/checkout-availability/7",  # one per breach: #7, whatever its severity
        "slo": "checkout-availability",
        "service": "checkout",
        "severity": severity,
        "summary": "checkout-availability: burning error budget 14.4x too fast",
        "details": {"burn_rate_1h": 14.4, "budget_left_ratio": 0.62},
        "links": (SLACK_LINK, DASHBOARD_LINK),
    }
    return Incident(**{**fields, **changes})


def event(action: str, severity: str = "page", **changes: Any) -> IncidentEvent:
    """An event about `incident(severity)` unless `incident=` says otherwise."""
    fields: dict[str, Any] = {
        "action": action,
        "incident": incident(severity),
        "at": T0,
        "id": f"outbox-{action}-{severity}",
    }
    return IncidentEvent(**{**fields, **changes})


def settings(kind: str, annotations: Mapping[str, str], name: str = "oncall") -> NotificationTarget:
    """A NotificationTarget of `kind`; `annotations` are named without the `slo-bot/` prefix."""
    return NotificationTarget(name, kind, annotations={f"slo-bot/{k}": v for k, v in annotations.items()})


def mock_client(
    handler: Callable[[httpx.Request], httpx.Response], seen: list[httpx.Request] | None = None
) -> httpx.Client:
    """A client whose requests `handler` answers; each request is appended to `seen`."""

    def record(request: httpx.Request) -> httpx.Response:
        request.read()
        if seen is not None:
            seen.append(request)
        return handler(request)

    return httpx.Client(transport=httpx.MockTransport(record))


def raises(exc: type[Exception], message: str = "timed out") -> Callable[[httpx.Request], httpx.Response]:
    """A handler failing at the transport level, as a timeout or a refused connection does."""

    def handler(request: httpx.Request) -> httpx.Response:
        raise exc(message, request=request)  # type: ignore[call-arg]

    return handler
