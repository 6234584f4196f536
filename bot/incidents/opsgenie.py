"""Opsgenie: one alert per slo-bot alert through the Alert API v2, keyed by its alias (the dedup key).

Priority sent: page -> P1, budget-0 -> P2, ticket and every other key -> P3.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from bot.annotations import parse_list, parse_region
from bot.domain import NotificationTarget
from bot.incidents.base import (
    ACKNOWLEDGE,
    ESCALATE,
    RAISE,
    RESOLVE,
    TRIGGER,
    UNACKNOWLEDGE,
    Incident,
    IncidentEvent,
    Sent,
    TargetRejected,
)
from bot.incidents.http import annotation, answer_field, plain, request

if TYPE_CHECKING:
    import httpx

URLS = {"us": "https://api.opsgenie.com", "eu": "https://api.eu.opsgenie.com"}
PRIORITIES = {"page": "P1", "budget-0": "P2", "ticket": "P3"}
DEFAULT_PRIORITY = "P3"
# Opsgenie's documented limits (characters)
MAX_MESSAGE = 130
MAX_ALIAS = 512
MAX_DESCRIPTION = 15_000
MAX_TAG = 50
MAX_TAGS = 20
MAX_DETAILS = 8_000  # all keys and values together
MAX_ENTITY = 512
MAX_USER = 100
MAX_NOTE = 25_000
# the alert actions slo-bot sends, by Alert API path
ACTION_PATHS = {ACKNOWLEDGE: "acknowledge", UNACKNOWLEDGE: "unacknowledge", RESOLVE: "close"}


def alias_of(incident: Incident) -> str:
    """The Opsgenie alias of an incident: its dedup key, cut to Opsgenie's limit the same way each time."""
    return incident.dedup_key[:MAX_ALIAS]


def priority_of(key: str) -> str:
    return PRIORITIES.get(key, DEFAULT_PRIORITY)


class OpsgenieTarget:
    """An Opsgenie API integration (`slo-bot/api-key`) in region `slo-bot/region` (us | eu) or at
    `slo-bot/url`. New alerts go to the teams in `slo-bot/responders` (comma-separated names);
    escalating uses the escalation named in `slo-bot/escalation`, or else raises the alert to P1."""

    def __init__(self, target: NotificationTarget, client: httpx.Client) -> None:
        self.target = target
        self._client = client
        self._where = f"Opsgenie target {target.name!r}"
        self._key = annotation(target, "api-key", required=True)
        try:
            region = parse_region(annotation(target, "region"))  # as the catalogue checks it
        except ValueError as err:
            raise TargetRejected(f"{self._where}: annotation slo-bot/region {err}") from None
        self._base = (annotation(target, "url", url=True) or URLS[region]).rstrip("/")
        self._responders = [
            {"type": "team", "name": name} for name in parse_list(annotation(target, "responders"))
        ]
        self._escalation = annotation(target, "escalation")

    def send(self, event: IncidentEvent) -> Sent:
        if event.action == TRIGGER:
            return self._call("POST", "/v2/alerts", self._create(event))
        path = f"/v2/alerts/{quote(alias_of(event.incident), safe='')}"
        if event.action in ACTION_PATHS:
            return self._call(
                "POST", f"{path}/{ACTION_PATHS[event.action]}", self._about(event), by_alias=True
            )
        if event.action == RAISE:
            raised = {"priority": priority_of(event.incident.severity)}
            return self._call("PUT", f"{path}/priority", raised, by_alias=True)
        if event.action == ESCALATE:
            if self._escalation:
                body = {"escalation": {"type": "escalation", "name": self._escalation}, **self._about(event)}
                return self._call("POST", f"{path}/escalate", body, by_alias=True)
            return self._call("PUT", f"{path}/priority", {"priority": "P1"}, by_alias=True)
        raise ValueError(f"unknown incident action {event.action!r}")

    def _create(self, event: IncidentEvent) -> dict[str, Any]:
        incident = event.incident
        tags = ["slo-bot", f"slo:{incident.slo}", f"severity:{incident.severity}"]
        if incident.service:
            tags.append(f"service:{incident.service}")
        body: dict[str, Any] = {
            "message": (incident.summary.strip() or f"{incident.slo}: {incident.severity}")[:MAX_MESSAGE],
            "alias": alias_of(incident),
            "description": _description(event)[:MAX_DESCRIPTION],
            "responders": self._responders,
            "tags": [t[:MAX_TAG] for t in tags][:MAX_TAGS],
            "details": _details(incident),
            "entity": incident.slo[:MAX_ENTITY],
            "priority": priority_of(incident.severity),
            **self._about(event),
        }
        return body

    def _about(self, event: IncidentEvent) -> dict[str, str]:
        """Who did it and why, which every alert action takes."""
        about = {"user": (event.actor or "slo-bot")[:MAX_USER], "source": "slo-bot"}
        if event.note:
            about["note"] = event.note[:MAX_NOTE]
        return about

    def _call(self, method: str, path: str, body: Mapping[str, Any], *, by_alias: bool = False) -> Sent:
        response = request(
            self._client,
            method,
            self._base + path,
            where=self._where,
            secrets=(self._key,),
            auth_hint="check the annotations slo-bot/api-key and slo-bot/region",
            headers={"Authorization": f"GenieKey {self._key}"},
            # without identifierType Opsgenie reads the alias as an alert id and finds nothing
            params={"identifierType": "alias"} if by_alias else None,
            json=body,
        )
        # Opsgenie works asynchronously: its requestId is the handle to ask how the request ended
        return Sent(reference=answer_field(response, "requestId"))


def _description(event: IncidentEvent) -> str:
    incident = event.incident
    lines = [incident.summary, ""]
    lines += [f"{k}: {_text(v)}" for k, v in plain(incident.details).items()]
    lines += [f"{text}: {url}" for text, url in incident.links]
    if event.actor:
        lines.append(f"Declared by {event.actor}")
    if event.note:
        lines += ["", event.note]
    return "\n".join(lines).strip()


def _details(incident: Incident) -> dict[str, str]:
    """Opsgenie's details are strings only, 8000 characters in all; what does not fit stays in the
    description."""
    items = [
        ("slo", incident.slo),
        ("service", incident.service),
        ("severity", incident.severity),
        ("dedup_key", incident.dedup_key),
        *((k, _text(v)) for k, v in plain(incident.details).items()),
    ]
    details: dict[str, str] = {}
    size = 0
    for key, value in items:
        size += len(key) + len(value)
        if size > MAX_DETAILS:
            break
        details[key] = value
    return details


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
