"""What each evaluation means for the incident tools: one incident per burn breach, opened when it
opens (in the tools of its severity), raised in place when a ticket becomes a page, resolved when it
ends, escalated when a page stays unacknowledged. Runs inside the evaluation's transaction and only
writes the outbox (and the `incident` rows); `bot.incidents.delivery` makes the calls."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlmodel import Session

from bot import breaches
from bot.alerting import FIRING
from bot.conversation import Conversation
from bot.domain import SLO, NotificationTarget
from bot.incidents.base import ACKNOWLEDGE, ESCALATE, RAISE, RESOLVE, UNACKNOWLEDGE
from bot.jobs import Tick
from bot.messages import label, span
from bot.mrkdwn import escape
from bot.policy import PAGE
from bot.routing import escalate_after, incident_targets, oncall_group
from bot.store import breaches as breach_store
from bot.store import slack as slack_store
from bot.store.incidents import incidents_of, open_incidents, queue_call, queue_upstream, vendor
from bot.store.models import BreachRecord, IncidentRecord
from bot.store.repo import utc


class IncidentDestination:
    """The incident tools as a place breaches are shown (see `bot.conversation`): one incident per
    burn breach in each tool of its severity."""

    name = "incidents"

    def acknowledged(
        self, session: Session, breach: BreachRecord, on: bool, actor: str, now: datetime, origin: str | None
    ) -> None:
        queue_upstream(
            session, breach, ACKNOWLEDGE if on else UNACKNOWLEDGE, now, actor=actor, exclude=origin
        )

    def note(self, session: Session, breach: BreachRecord, text: str, now: datetime, by: str | None) -> None:
        return None  # the tools keep their own timelines; what happens in them comes back by webhook

    def changed(self, session: Session, breach: BreachRecord, now: datetime) -> None:
        return None

    def lines(self, session: Session, breach: BreachRecord) -> list[str]:
        return [incident_line(i) for i in incidents_of(session=session, breach_id=breach.id or 0)]

    def tick(self, session: Session, tick: Tick, conversation: Conversation) -> bool:
        slo_id, slo, now = tick.record.id, tick.slo, tick.now
        assert slo_id is not None
        queued = False
        for change, breach in tick.changes:
            if change.event == breaches.RESOLVED:
                queued = bool(queue_upstream(session, breach, RESOLVE, now)) or queued
            elif change.event == breaches.RAISED:
                queued = raise_incidents(session, breach, now) or queued
        silenced: list[bool] = []  # read once, and only when there is something to page

        def paging() -> bool:
            # a silenced SLO pages nobody; its breach opens upstream when the silence ends
            if not silenced:
                silenced.append(
                    slack_store.active_silence(session=session, slo_id=slo_id, now=now) is not None
                )
            return not silenced[0]

        for breach in (b for b in tick.open if b.kind == breaches.BURN):
            targets = incident_targets(slo, breach.severity)
            if targets and missing(session, breach, targets) and paging():
                queued = bool(open_incidents(session, breach, slo, targets, now)) or queued
            if breach.severity == PAGE and escalation_due(breach, slo, tick, now) and paging():
                queued = escalate(session, breach, slo, now, conversation, tick) or queued
        return queued


def raise_incidents(session: Session, breach: BreachRecord, now: datetime) -> bool:
    """The breach became more severe: its open incidents say so in place (same key, same incident)."""
    queued = False
    for incident in incidents_of(session=session, breach_id=breach.id or 0):
        if incident.state == "resolved" or incident.severity == breach.severity:
            continue
        if breaches.rank(breach.severity) <= breaches.rank(incident.severity or ""):
            continue
        incident.severity = breach.severity
        session.add(incident)
        queue_call(session, breach, incident, RAISE, now, note=f"Raised to {label(breach.severity)}")
        queued = True
    return queued


def missing(session: Session, breach: BreachRecord, targets: Sequence[NotificationTarget]) -> bool:
    """Whether a target has no incident of the breach yet."""
    have = {i.target for i in incidents_of(session=session, breach_id=breach.id or 0)}
    return any(t.name not in have for t in targets)


def page_since(breach: BreachRecord, tick: Tick) -> datetime | None:
    """When the breach's page signal fired (the breach may have opened as a ticket): of the SLO's
    signals open after this evaluation."""
    pages = [
        utc(s.fired_at)
        for s in tick.signals.values()
        if s.breach_id == breach.id and s.key == PAGE and s.state == FIRING
    ]
    return max((p for p in pages if p is not None), default=None) or utc(breach.opened_at)


def escalation_due(breach: BreachRecord, slo: SLO, tick: Tick, now: datetime) -> bool:
    """A page unacknowledged past its escalation delay, not escalated yet."""
    if breach.acknowledged_by or breach.escalated_at is not None:
        return False
    fired = page_since(breach, tick)
    return fired is not None and now - fired >= escalate_after(slo, PAGE)


def escalate(
    session: Session, breach: BreachRecord, slo: SLO, now: datetime, conversation: Conversation, tick: Tick
) -> bool:
    """Escalate a page that is due (`escalation_due`): mention the on-call group in its thread and
    escalate it in the tools, once. Acknowledging before then (even during this tick) stops it.
    True when it escalated."""
    fired = page_since(breach, tick)
    assert fired is not None
    after = escalate_after(slo, PAGE)
    if not breach_store.claim_escalation(session=session, breach=breach, now=now):
        return False
    assert breach.id is not None
    breach_store.add_event(
        session=session,
        breach_id=breach.id,
        at=now,
        event="escalated",
        detail=f"unacknowledged for {span(after)}",
    )
    group = oncall_group(slo, PAGE)
    who = f"<!subteam^{group}>" if group else "On-call"
    text = (
        f"{who}: this page has been unacknowledged for {span(now - fired)}. "
        "Please acknowledge it (or silence it, with a reason)."
    )
    conversation.note(session, breach, text, now, source=IncidentDestination.name)
    queue_upstream(session, breach, ESCALATE, now, note=f"Unacknowledged in Slack for {span(now - fired)}")
    return True


def incident_line(incident: IncidentRecord) -> str:
    """PagerDuty `pd-checkout`: acknowledged by Jane Doe · #42 (linked)."""
    state = {"queued": "opening…", "triggered": "open"}.get(incident.state, incident.state)
    if incident.changed_by and incident.state in ("acknowledged", "resolved"):
        state += f" by {escape(incident.changed_by)}"
    line = f"{vendor(incident.kind)} `{incident.target}`: {state}"
    if incident.url:  # the tool's link and number: a `>` or `|` in them must not make another link
        number = escape("#" + incident.number) if incident.number else "open it"
        line += f" · <{escape(incident.url).replace('|', '%7C')}|{number}>"
    if incident.last_error:
        line += f" · ⚠ {escape(incident.last_error[:200])}"
    return line
