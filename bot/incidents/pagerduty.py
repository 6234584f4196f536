"""PagerDuty: alerts through the Events API v2; escalation through the REST API when a token is set.

Severity sent: page -> critical, budget-0 -> error, no-data -> info, ticket and every other key -> warning.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from bot.annotations import parse_region, parse_routing_key
from bot.domain import NotificationTarget
from bot.incidents.base import (
    ACKNOWLEDGE,
    ESCALATE,
    RAISE,
    RESOLVE,
    TRIGGER,
    UNACKNOWLEDGE,
    IncidentEvent,
    Sent,
    TargetRejected,
    TargetUnavailable,
)
from bot.incidents.http import annotation, answer_field, iso_utc, plain, request

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)

EVENTS_URLS = {
    "us": "https://events.pagerduty.com/v2/enqueue",
    "eu": "https://events.eu.pagerduty.com/v2/enqueue",
}
API_URLS = {"us": "https://api.pagerduty.com", "eu": "https://api.eu.pagerduty.com"}
MAX_SUMMARY = 1024
REST_ACCEPT = "application/vnd.pagerduty+json;version=2"


def severity_of(key: str) -> str:
    """PagerDuty's severity for an alert key. A page is critical and a spent budget an error; missing
    data is info (it says nothing yet about users); tickets and budget thresholds are warnings."""
    if key == "page":
        return "critical"
    if key == "budget-0":
        return "error"
    if key == "no-data":
        return "info"
    return "warning"


class PagerDutyTarget:
    """One Events API v2 integration (`slo-bot/routing-key`), in region `slo-bot/region` (us | eu)
    or at `slo-bot/url`. With `slo-bot/api-token` (and `slo-bot/from`, the email PagerDuty wants from
    account tokens) escalation moves the open incident one level up its escalation policy; without,
    it re-triggers the alert as critical, which PagerDuty appends to the open alert."""

    def __init__(self, target: NotificationTarget, client: httpx.Client) -> None:
        self.target = target
        self._client = client
        self._where = f"PagerDuty target {target.name!r}"
        try:
            self._routing_key = parse_routing_key(annotation(target, "routing-key", required=True))
        except ValueError as err:  # the catalogue refuses the same key, at its line
            raise TargetRejected(f"{self._where}: annotation slo-bot/routing-key {err}") from None
        try:
            region = parse_region(annotation(target, "region"))  # as the catalogue checks it
        except ValueError as err:
            raise TargetRejected(f"{self._where}: annotation slo-bot/region {err}") from None
        self._events_url = annotation(target, "url", url=True) or EVENTS_URLS[region]
        self._api_url = (annotation(target, "api-url", url=True) or API_URLS[region]).rstrip("/")
        self._api_token = annotation(target, "api-token")
        self._from = annotation(target, "from")
        self._secrets = (self._routing_key, self._api_token)

    def send(self, event: IncidentEvent) -> Sent:
        key = event.incident.dedup_key
        if event.action in (TRIGGER, RAISE):  # a trigger under the same key updates its severity
            return self._enqueue(self._trigger(event, escalated=False))
        if event.action in (ACKNOWLEDGE, RESOLVE):
            # PagerDuty reads only the key for these; a payload would be ignored
            return self._enqueue(
                {"routing_key": self._routing_key, "event_action": event.action, "dedup_key": key}
            )
        if event.action == UNACKNOWLEDGE:
            return Sent(skipped=True)  # the Events API has no such action
        if event.action == ESCALATE:
            if self._api_token:
                return self._escalate(key)
            return self._enqueue(self._trigger(event, escalated=True))
        raise ValueError(f"unknown incident action {event.action!r}")

    # --- Events API v2 ---------------------------------------------------------------------------

    def _trigger(self, event: IncidentEvent, *, escalated: bool) -> dict[str, Any]:
        incident = event.incident
        summary = incident.summary.strip() or f"{incident.slo}: {incident.severity}"
        details: dict[str, Any] = plain(incident.details)
        if event.actor:
            details["actor"] = event.actor
        if event.note:
            details["note"] = event.note
        if escalated:
            summary = "Escalated: " + summary
            details["escalated"] = True
        payload: dict[str, Any] = {
            "summary": summary[:MAX_SUMMARY],
            "source": incident.service or incident.slo,
            "severity": "critical" if escalated else severity_of(incident.severity),
            "timestamp": iso_utc(event.at),
            "component": incident.slo,
            "class": incident.severity,
            "custom_details": details,
        }
        if incident.service:
            payload["group"] = incident.service
        body: dict[str, Any] = {
            "routing_key": self._routing_key,
            "event_action": "trigger",
            "dedup_key": incident.dedup_key,
            "payload": payload,
            "client": "slo-bot",
            "links": [{"href": url, "text": text} for text, url in incident.links],
        }
        if incident.links:
            body["client_url"] = incident.links[0][1]  # "View in slo-bot": the Slack message
        return body

    def _enqueue(self, body: Mapping[str, Any]) -> Sent:
        response = request(
            self._client,
            "POST",
            self._events_url,
            where=self._where,
            secrets=self._secrets,
            auth_hint="check the annotation slo-bot/routing-key",
            json=body,
        )
        return Sent(reference=answer_field(response, "dedup_key"))

    # --- REST API: escalate one level ------------------------------------------------------------

    def _escalate(self, dedup_key: str) -> Sent:
        found = self._rest(
            "GET",
            "/incidents",
            params=[
                ("incident_key", dedup_key),
                ("statuses[]", "triggered"),
                ("statuses[]", "acknowledged"),
            ],
        )
        incidents = [i for i in found.get("incidents") or () if isinstance(i, Mapping) and i.get("id")]
        if not incidents:
            # resolved meanwhile (or never reached PagerDuty): a new trigger would open a new incident
            log.warning("%s: no open incident for %s, nothing to escalate", self._where, dedup_key)
            return Sent(skipped=True)
        incident = incidents[0]
        level = self._current_level(incident)
        headers = {"From": self._from} if self._from else {}
        self._rest(
            "PUT",
            f"/incidents/{quote(str(incident['id']), safe='')}",
            headers=headers,
            json={"incident": {"type": "incident_reference", "escalation_level": level + 1}},
        )
        return Sent(reference=str(incident["id"]))

    def _current_level(self, incident: Mapping[str, Any]) -> int:
        """The incident's escalation level. PagerDuty's incident does not carry it, but the on-call
        entries of its assignees on its escalation policy do; the highest wins, so escalating never
        goes back down. Level 1 when nobody is assigned."""
        policy = incident.get("escalation_policy")
        policy_id = policy.get("id") if isinstance(policy, Mapping) else None
        users = [
            a["assignee"]["id"]
            for a in incident.get("assignments") or ()
            if isinstance(a, Mapping) and isinstance(a.get("assignee"), Mapping) and a["assignee"].get("id")
        ]
        if not policy_id or not users:
            return 1
        oncalls = self._rest(
            "GET",
            "/oncalls",
            params=[("escalation_policy_ids[]", str(policy_id)), *(("user_ids[]", str(u)) for u in users)],
        )
        levels = [
            o["escalation_level"]
            for o in oncalls.get("oncalls") or ()
            if isinstance(o, Mapping) and isinstance(o.get("escalation_level"), int)
        ]
        return max(levels, default=1)

    def _rest(
        self, method: str, path: str, *, headers: Mapping[str, str] | None = None, **options: Any
    ) -> Any:
        response = request(
            self._client,
            method,
            self._api_url + path,
            where=f"{self._where} (REST API)",
            secrets=self._secrets,
            auth_hint="check the annotations slo-bot/api-token and slo-bot/from",
            headers={
                "Authorization": f"Token token={self._api_token}",
                "Accept": REST_ACCEPT,
                **(headers or {}),
            },
            **options,
        )
        if method != "GET":
            return {}
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, Mapping):
            raise TargetUnavailable(f"{self._where} (REST API): garbled answer to {method} {path}")
        return body
