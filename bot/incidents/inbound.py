"""What the incident tools tell slo-bot: PagerDuty v3 and Opsgenie webhooks, verified, parsed and applied
to the breach they speak of, so Slack shows what happened in the tool ("Acknowledged in PagerDuty by ...").

A forged request (bad signature or token) changes nothing; a retried or replayed delivery acts once.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session

from bot.alerting import FIRING
from bot.conversation import Conversation
from bot.mrkdwn import escape
from bot.store import incidents as incident_store
from bot.store.incidents import WEBHOOK_MEMORY, vendor
from bot.store.models import BreachRecord, IncidentRecord

log = logging.getLogger(__name__)

ACKNOWLEDGED, UNACKNOWLEDGED, RESOLVED, TRIGGERED = "acknowledged", "unacknowledged", "resolved", "triggered"
REASSIGNED, ESCALATED, NOTE, OTHER = "reassigned", "escalated", "note", "other"
PAGERDUTY_EVENTS = {
    "incident.triggered": TRIGGERED,
    "incident.reopened": TRIGGERED,
    "incident.acknowledged": ACKNOWLEDGED,
    "incident.unacknowledged": UNACKNOWLEDGED,
    "incident.resolved": RESOLVED,
    "incident.reassigned": REASSIGNED,
    "incident.escalated": ESCALATED,
    "incident.annotated": NOTE,
}
OPSGENIE_ACTIONS = {
    "create": TRIGGERED,
    "acknowledge": ACKNOWLEDGED,
    "unacknowledge": UNACKNOWLEDGED,
    "close": RESOLVED,
    "assignownership": REASSIGNED,
    "escalate": ESCALATED,
    "escalatetonext": ESCALATED,
    "addnote": NOTE,
}


@dataclass(frozen=True)
class Inbound:
    """One webhook delivery, as slo-bot needs it."""

    source: str  # pagerduty | opsgenie
    event_id: str
    kind: str  # ACKNOWLEDGED, RESOLVED ... or OTHER (answered, not acted on)
    dedup_key: str | None  # our key: PagerDuty's incident_key, Opsgenie's alias
    external_id: str | None  # the tool's id for the incident
    number: str | None = None
    url: str | None = None
    who: str | None = None  # the person who acted, as the tool names them
    detail: str = ""  # assignees, the note's text
    occurred_at: datetime | None = None


# --- verification ------------------------------------------------------------------------------


def pagerduty_signature(secret: str, body: bytes) -> str:
    return "v1=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_pagerduty(secret: str, body: bytes, header: str) -> bool:
    """`X-PagerDuty-Signature` holds one `v1=<hex>` per active secret, comma-separated (during a
    rotation there are two); one must match."""
    expected = pagerduty_signature(secret, body).encode("ascii")
    # compared as bytes: a header is whatever the sender put there, non-ASCII too (a refusal, not a 500)
    parts = (p.strip().encode("utf-8", "replace") for p in header.split(","))
    return any(hmac.compare_digest(expected, part) for part in parts if part)


def verify_token(expected: str, given: str) -> bool:
    return bool(expected) and hmac.compare_digest(expected.encode("utf-8"), given.encode("utf-8", "replace"))


# --- parsing -----------------------------------------------------------------------------------


def _text(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def parse_pagerduty(body: bytes) -> Inbound:
    """A PagerDuty v3 webhook; ValueError when it is not one."""
    document = json.loads(body)
    event = document.get("event") if isinstance(document, Mapping) else None
    if not isinstance(event, Mapping) or not event.get("id") or not event.get("event_type"):
        raise ValueError("not a PagerDuty v3 webhook: no event.id / event.event_type")
    data = event.get("data") if isinstance(event.get("data"), Mapping) else {}
    assert isinstance(data, Mapping)
    incident = data
    if data.get("type") != "incident" and isinstance(data.get("incident"), Mapping):
        incident = data["incident"]  # a note, a status update: data holds it, data.incident the incident
    agent = event.get("agent") if isinstance(event.get("agent"), Mapping) else {}
    assert isinstance(agent, Mapping)
    assignees = [
        str(a.get("summary"))
        for a in data.get("assignees") or []
        if isinstance(a, Mapping) and a.get("summary")
    ]
    kind = PAGERDUTY_EVENTS.get(str(event["event_type"]), OTHER)
    detail = ", ".join(assignees) if kind in (REASSIGNED, ESCALATED) else str(data.get("content") or "")
    return Inbound(
        source="pagerduty",
        event_id=str(event["id"]),
        kind=kind,
        dedup_key=_text(incident.get("incident_key")),
        external_id=_text(incident.get("id")),
        number=_text(incident.get("number")),
        url=_text(incident.get("html_url")),
        who=_text(agent.get("summary")),
        detail=detail,
        occurred_at=_time(event.get("occurred_at")),
    )


def _epoch(value: Any) -> datetime | None:
    """Opsgenie's times are integers since the epoch: `updatedAt` in nanoseconds, `createdAt` in
    milliseconds; told apart by their size."""
    if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
        return None
    try:
        seconds = float(value)
    except OverflowError:  # an integer beyond any float: no time of Opsgenie's
        return None
    if not math.isfinite(seconds) or seconds > 1e20:  # JSON's Infinity; beyond nanoseconds
        return None
    while seconds > 1e11:  # past the year 5138 in seconds: ms, µs or ns
        seconds /= 1000
    return datetime.fromtimestamp(seconds, UTC)


def parse_opsgenie(body: bytes) -> Inbound:
    """An Opsgenie webhook integration's request; ValueError when it is not one. Opsgenie gives no
    delivery id: its own identifiers make one, the action, the alert's id and the alert's update time
    for that action; a delivery without that time is known by a digest of its body (never by the
    alert's creation time, which every later event of the alert shares)."""
    document = json.loads(body)
    alert = document.get("alert") if isinstance(document, Mapping) else None
    if not isinstance(alert, Mapping) or not document.get("action") or not alert.get("alertId"):
        raise ValueError("not an Opsgenie webhook: no action / alert.alertId")
    action = str(document["action"])
    kind = OPSGENIE_ACTIONS.get(action.lower(), OTHER)
    updated = alert.get("updatedAt")
    when = str(updated) if updated not in (None, "") else "body-" + hashlib.sha256(body).hexdigest()[:40]
    owner = _text(alert.get("owner"))
    return Inbound(
        source="opsgenie",
        event_id=f"{action}:{alert['alertId']}:{when}",
        occurred_at=_epoch(updated),  # a replay older than the memory of ids is refused by its age
        kind=kind,
        dedup_key=_text(alert.get("alias")),
        external_id=_text(alert.get("alertId")),
        number=_text(alert.get("tinyId")),
        who=_text(alert.get("username")),
        detail=(owner or "") if kind == REASSIGNED else str(alert.get("note") or ""),
    )


# --- applying ----------------------------------------------------------------------------------


def apply(session: Session, inbound: Inbound, now: datetime, conversation: Conversation) -> str:
    """Bring the breach and its Slack message in step with the tool; returns what was done, for the
    log and the answer. The caller commits."""
    if inbound.occurred_at is not None and now - inbound.occurred_at > WEBHOOK_MEMORY:
        return "ignored: older than the replay window"
    source, event_id = inbound.source, inbound.event_id
    if not incident_store.first_webhook_sight(session=session, source=source, event_id=event_id, now=now):
        return "ignored: already handled"
    # the tool's own id first: it names one incident for good; our key second (an event that came
    # before the tool's answer gave us its id). Either way an older breach's event lands on that breach.
    incident = None
    if inbound.external_id:
        incident = incident_store.by_external_id(
            session=session, external_id=inbound.external_id, kind=source
        )
    if incident is None and inbound.dedup_key:
        incident = incident_store.by_dedup_key(session=session, dedup_key=inbound.dedup_key, kind=source)
    if incident is None:
        return "ignored: not an incident slo-bot opened"
    breach = session.get(BreachRecord, incident.breach_id)
    if breach is None:
        return "ignored: its breach is gone"
    _learn(incident, inbound, now)
    session.add(incident)
    tool = vendor(source)
    who = inbound.who or tool
    # the tool's people and notes are shown in Slack's mrkdwn: escaped, so `<!channel>` pings no one
    said = escape(who)
    by = f" by {said}." if inbound.who else "."
    if inbound.kind == ACKNOWLEDGED:
        incident.state, incident.changed_by = ACKNOWLEDGED, who
        _acknowledge(
            conversation, session, breach, incident, True, f"Acknowledged in {tool} by {said}.", now, who
        )
    elif inbound.kind == UNACKNOWLEDGED:
        incident.state, incident.changed_by = TRIGGERED, None
        note = f"Unacknowledged in {tool}" + (by if inbound.who else " (its acknowledgement timed out).")
        _acknowledge(conversation, session, breach, incident, False, note, now, who)
    elif inbound.kind == RESOLVED:
        incident.state, incident.changed_by = RESOLVED, who
        note = f"Resolved in {tool} by {said}."
        if breach.state == FIRING:
            note += " The breach stays open here until the burn rates are back under their thresholds."
        # someone handled it: it counts as acknowledged here, and escalates no further
        _acknowledge(conversation, session, breach, incident, True, note, now, who)
    elif inbound.kind == TRIGGERED:
        if incident.state in ("queued", RESOLVED):
            incident.state = TRIGGERED
        conversation.changed(session, breach, now)
    elif inbound.kind in (REASSIGNED, ESCALATED):
        verb = "Reassigned" if inbound.kind == REASSIGNED else "Escalated"
        to = f" to {escape(inbound.detail)}" if inbound.detail else ""
        _show(conversation, session, breach, f"{verb} in {tool}{to}{by}", now, who)
    elif inbound.kind == NOTE and inbound.detail:
        text = escape(inbound.detail[:2000])
        conversation.note(session, breach, f"Note in {tool} by {said}: {text}", now, by=who)
    else:
        return "ignored: nothing to show for this event"
    return f"applied: {inbound.kind}"


def _acknowledge(
    conversation: Conversation,
    session: Session,
    breach: BreachRecord,
    incident: IncidentRecord,
    on: bool,
    note: str,
    now: datetime,
    who: str,
) -> None:
    """Acknowledge the breach (or take it back) as the tool's person did; the other tools follow, the
    one it came from is not told back. When there is nothing to change, the note still goes out."""
    person = f"{who} ({vendor(incident.kind)})"
    changes = breach.state == FIRING and on != bool(breach.acknowledged_by)
    if not changes or not conversation.acknowledge(
        session, breach, person, now, on=on, actor=person, note=note, origin=incident.target
    ):
        _show(conversation, session, breach, note, now, who)


def _learn(incident: IncidentRecord, inbound: Inbound, now: datetime) -> None:
    """What the tool calls the incident: its id, number and page."""
    incident.external_id = (inbound.external_id or incident.external_id or "")[:64] or None
    incident.number = (inbound.number or incident.number or "")[:32] or None
    incident.url = inbound.url or incident.url
    incident.updated_at = now


def _show(
    conversation: Conversation, session: Session, breach: BreachRecord, note: str, now: datetime, who: str
) -> None:
    conversation.changed(session, breach, now)
    conversation.note(session, breach, note, now, by=who)


# --- the HTTP side -----------------------------------------------------------------------------


@dataclass
class Webhooks:
    """`POST /webhooks/pagerduty` and `/webhooks/opsgenie` (see `bot.web`): (status, text) answers."""

    engine: Engine
    clock: Callable[[], datetime]
    conversation: Conversation  # where what the tool says is shown
    pagerduty_secret: str | None = None
    opsgenie_token: str | None = None
    on_change: Callable[[], None] | None = None  # wake the deliveries

    def pagerduty(self, headers: Mapping[str, str], body: bytes) -> tuple[int, str]:
        if not self.pagerduty_secret:
            return 404, "PagerDuty webhooks are off: set PAGERDUTY_WEBHOOK_SECRET"
        if not verify_pagerduty(self.pagerduty_secret, body, headers.get("x-pagerduty-signature", "")):
            log.warning("refused a PagerDuty webhook with a bad signature")
            return 401, "bad signature"
        return self._apply(parse_pagerduty, body)

    def opsgenie(self, headers: Mapping[str, str], body: bytes) -> tuple[int, str]:
        if not self.opsgenie_token:
            return 404, "Opsgenie webhooks are off: set OPSGENIE_WEBHOOK_TOKEN"
        if not verify_token(self.opsgenie_token, headers.get("x-slo-bot-token", "")):
            log.warning("refused an Opsgenie webhook with a bad token")
            return 401, "bad token"
        return self._apply(parse_opsgenie, body)

    def _apply(self, parse: Callable[[bytes], Inbound], body: bytes) -> tuple[int, str]:
        try:
            inbound = parse(body)
        except (ValueError, TypeError, AttributeError, OverflowError) as err:
            return 400, f"unreadable webhook: {err}"
        with Session(self.engine) as session:
            outcome = apply(session, inbound, self.clock(), self.conversation)
            session.commit()
        log.info("%s webhook %s (%s): %s", inbound.source, inbound.event_id, inbound.kind, outcome)
        if outcome.startswith("applied") and self.on_change is not None:
            self.on_change()
        return 200, outcome
