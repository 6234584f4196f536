"""Squadcast: incidents through a service's Incident Webhook alert source (trigger and resolve only).

The webhook URL holds the API key, so it is a secret: messages show only its host.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from bot.domain import NotificationTarget
from bot.incidents.base import ACTIONS, RAISE, RESOLVE, TRIGGER, IncidentEvent, Sent
from bot.incidents.http import annotation, host_of, plain, request

if TYPE_CHECKING:
    import httpx

# Squadcast refuses payloads over 30 KB (HTTP 413); the description is cut to leave room for the rest.
MAX_DESCRIPTION_BYTES = 24_000


class SquadcastTarget:
    """The Incident Webhook at `slo-bot/url` (`https://api.squadcast.com/v2/incidents/api/<key>`).
    Squadcast's webhook knows only trigger and resolve, keyed by `event_id` (the dedup key):
    acknowledge, unacknowledge and escalate are skipped, and left to Squadcast's own policies."""

    def __init__(self, target: NotificationTarget, client: httpx.Client) -> None:
        self.target = target
        self._client = client
        self._url = annotation(target, "url", required=True, url=True)
        self._where = f"Squadcast target {target.name!r} ({host_of(self._url)})"
        key = urlsplit(self._url).path.rstrip("/").rsplit("/", 1)[-1]
        self._secrets = (self._url, key)

    def send(self, event: IncidentEvent) -> Sent:
        incident = event.incident
        message = incident.summary.strip() or f"{incident.slo}: {incident.severity}"
        if event.action in (TRIGGER, RAISE):  # the same event_id: its incident, updated
            body: dict[str, Any] = {
                "message": message,
                "description": _clip(_description(event) or message, MAX_DESCRIPTION_BYTES),
                "tags": _tags(event),
                "status": "trigger",
                "event_id": incident.dedup_key,
            }
        elif event.action == RESOLVE:
            body = {"message": message, "status": "resolve", "event_id": incident.dedup_key}
        elif event.action in ACTIONS:
            return Sent(skipped=True)
        else:
            raise ValueError(f"unknown incident action {event.action!r}")
        request(
            self._client,
            "POST",
            self._url,
            where=self._where,
            secrets=self._secrets,
            auth_hint="check the annotation slo-bot/url (the Incident Webhook URL with its key)",
            json=body,
        )
        return Sent()  # Squadcast's answer carries no id worth keeping


def _tags(event: IncidentEvent) -> dict[str, str]:
    incident = event.incident
    tags = {"source": "slo-bot", "slo": incident.slo, "severity": incident.severity}
    if incident.service:
        tags["service"] = incident.service
    if event.actor:
        tags["declared_by"] = event.actor
    return tags


def _description(event: IncidentEvent) -> str:
    """Markdown, which Squadcast renders: the summary, the alert's numbers, then its links."""
    incident = event.incident
    lines = [incident.summary, ""]
    for key, value in plain(incident.details).items():
        shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        lines.append(f"- **{key}**: {shown}")
    if incident.links:
        lines.append("")
        lines += [f"- [{text}]({url})" for text, url in incident.links]
    if event.note:
        lines += ["", event.note]
    return "\n".join(lines).strip()


def _clip(text: str, max_bytes: int) -> str:
    data = text.encode("utf-8")
    if len(data) <= max_bytes:
        return text
    return data[: max_bytes - 3].decode("utf-8", errors="ignore") + "..."
