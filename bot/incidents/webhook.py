"""A generic webhook: every incident action POSTed as JSON, signed with HMAC-SHA256 over a timestamp
and the body (`X-Slo-Bot-Signature: t=<unix seconds>,v1=<hex>`, Stripe's scheme), so a receiver can
refuse a replayed delivery as well as a forged one.

`sign` and `verify` are what a receiver (or a test) needs to check a delivery.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from bot import redaction
from bot.domain import NotificationTarget
from bot.incidents.base import ACTIONS, IncidentEvent, Sent
from bot.incidents.http import annotation, host_of, iso_utc, plain, request

if TYPE_CHECKING:
    import httpx

VERSION = 1
SIGNATURE_HEADER = "X-Slo-Bot-Signature"
EVENT_HEADER = "X-Slo-Bot-Event"
DELIVERY_HEADER = "X-Slo-Bot-Delivery"
TOLERANCE_SECONDS = 300  # how old (or how far ahead) a signature's timestamp may be at the receiver
_TIMESTAMP = re.compile(r"[0-9]{1,12}")


def _mac(secret: str, body: bytes, timestamp: int) -> str:
    signed = f"{timestamp}.".encode("ascii") + body
    return hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The `X-Slo-Bot-Signature` value for `body` sent at `timestamp` (Unix seconds):
    `t=<timestamp>,v1=<hex HMAC-SHA256 of "<timestamp>." followed by the exact bytes>`."""
    return f"t={timestamp},v1={_mac(secret, body, timestamp)}"


def verify(
    secret: str, body: bytes, header: str, *, now: float, tolerance: float = TOLERANCE_SECONDS
) -> bool:
    """Whether `header` signs `body` under `secret` at a time within `tolerance` seconds of `now`;
    any one of several `v1=` (a sender rotating its secret) may match. Constant-time comparison; a
    garbled or non-ASCII header is simply not valid."""
    stamps: list[str] = []
    macs: list[bytes] = []
    for part in header.strip().split(","):
        name, _, value = part.strip().partition("=")
        if name == "t":
            stamps.append(value)
        elif name == "v1":
            macs.append(value.encode("utf-8", "replace"))
    if len(stamps) != 1 or not _TIMESTAMP.fullmatch(stamps[0]) or not macs:
        return False
    timestamp = int(stamps[0])
    if abs(now - timestamp) > tolerance:
        return False
    expected = _mac(secret, body, timestamp).encode("ascii")
    return any(hmac.compare_digest(expected, mac) for mac in macs)


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

    def __init__(
        self, target: NotificationTarget, client: httpx.Client, clock: Callable[[], float] = time.time
    ) -> None:
        self.target = target
        self._client = client
        self._clock = clock
        self._url = annotation(target, "url", required=True, url=True)
        self._secret = annotation(target, "secret", required=True)
        self._where = f"webhook target {target.name!r} ({host_of(self._url)})"
        # receivers put tokens in the query or the user info; an error may quote them alone
        self._secrets = (self._url, *redaction.of_url(self._url), self._secret)

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
                # signed when sent, so a retry hours later carries a fresh time the receiver accepts
                SIGNATURE_HEADER: sign(self._secret, body, int(self._clock())),
                EVENT_HEADER: event.action,
                DELIVERY_HEADER: document["id"],
            },
        )
        return Sent()
