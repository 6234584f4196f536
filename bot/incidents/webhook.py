"""A generic webhook: every incident action POSTed as JSON, signed with HMAC-SHA256 over the body.

`sign` and `verify` are what a receiver (or a test) needs to check a delivery.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any
from urllib.parse import urlsplit

import httpx

from bot.domain import NotificationTarget
from bot.incidents.base import ACTIONS, IncidentEvent, Sent
from bot.incidents.http import annotation, host_of, iso_utc, plain, request

VERSION = 1
SIGNATURE_HEADER = "X-Slo-Bot-Signature"
EVENT_HEADER = "X-Slo-Bot-Event"
DELIVERY_HEADER = "X-Slo-Bot-Delivery"


def sign(secret: str, body: bytes) -> str:
    """The `X-Slo-Bot-Signature` value for `body`: `sha256=<hex HMAC-SHA256 of the exact bytes>`."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str) -> bool:
    """Whether `header` is the signature of `body` under `secret`, compared in constant time."""
    return hmac.compare_digest(sign(secret, body).encode("ascii"), header.strip().encode("utf-8"))


def delivery_id(event: IncidentEvent) -> str:
    """The event's id; events without one get an id derived from what they say, so a retry of the
    same event is recognisable to the receiver all the same."""
    if event.id:
        return event.id
    said = f"{event.incident.dedup_key}|{event.action}|{iso_utc(event.at)}"
    return hashlib.sha256(said.encode("utf-8")).hexdigest()[:32]


def payload(event: IncidentEvent) -> dict[str, Any]:
    """The JSON document a receiver gets (version 1)."""
    incident = event.incident
    return {
        "version": VERSION,
        "id": delivery_id(event),
        "action": event.action,
        "at": iso_utc(event.at),
        "actor": event.actor,
        "note": event.note,
        "incident": {
            "dedup_key": incident.dedup_key,
            "slo": incident.slo,
            "service": incident.service,
            "severity": incident.severity,
            "summary": incident.summary,
            "details": plain(incident.details),
            "links": [{"text": text, "url": url} for text, url in incident.links],
        },
    }


class WebhookTarget:
    """POSTs to `slo-bot/url`, signed with `slo-bot/secret`; any 2xx answer counts as delivered."""

    def __init__(self, target: NotificationTarget, client: httpx.Client) -> None:
        self.target = target
        self._client = client
        self._url = annotation(target, "url", required=True, url=True)
        self._secret = annotation(target, "secret", required=True)
        self._where = f"webhook target {target.name!r} ({host_of(self._url)})"
        # receivers put tokens in the query or the user info; an error may quote them alone
        parts = urlsplit(self._url)
        self._secrets = (self._url, parts.query, parts.password or "", self._secret)

    def send(self, event: IncidentEvent) -> Sent:
        if event.action not in ACTIONS:
            raise ValueError(f"unknown incident action {event.action!r}")
        document = payload(event)
        # signed bytes and sent bytes must be the same bytes: serialise once
        body = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        request(
            self._client,
            "POST",
            self._url,
            where=self._where,
            secrets=self._secrets,
            auth_hint="check that the annotation slo-bot/secret is the receiver's secret",
            content=body,
            headers={
                "Content-Type": "application/json",
                SIGNATURE_HEADER: sign(self._secret, body),
                EVENT_HEADER: event.action,
                DELIVERY_HEADER: document["id"],
            },
        )
        return Sent()
