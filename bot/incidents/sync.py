"""What each evaluation means for the incident tools: open incidents for firing alerts, resolve them,
escalate unacknowledged pages. Runs inside the evaluation's transaction and only writes the outbox
(and the `incident` rows); `bot.incidents.delivery` makes the calls."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from sqlmodel import Session

from bot.alerting import FIRING, Transition
from bot.domain import SLO
from bot.incidents.base import ESCALATE, RESOLVE
from bot.messages import span
from bot.policy import PAGE
from bot.routing import escalate_after, incident_targets, oncall_group
from bot.slack.notify import queue_note
from bot.status import Assessment
from bot.store import alerts as alert_store
from bot.store import slack as slack_store
from bot.store.incidents import open_incidents, queue_upstream
from bot.store.models import AlertRecord, SLORecord
from bot.store.repo import utc


class IncidentHook:
    """Called by each evaluation, inside its transaction (see `bot.jobs.evaluate_all`)."""

    def __call__(
        self,
        session: Session,
        record: SLORecord,
        slo: SLO,
        assessment: Assessment,
        transitions: Sequence[Transition],
        now: datetime,
        open_alerts: Mapping[str, AlertRecord],
    ) -> bool:
        assert record.id is not None
        queued = False
        for transition in transitions:
            if transition.event == FIRING:
                continue  # opened below, with every other firing alert missing an incident
            alert = alert_store.latest(session=session, slo_id=record.id, key=transition.key)
            if alert is not None and alert.fired_at is not None:
                queued = bool(queue_upstream(session, alert, RESOLVE, now)) or queued
        firing = [a for a in open_alerts.values() if a.state == FIRING]
        if not firing or slack_store.active_silence(session=session, slo_id=record.id, now=now):
            return queued  # a silenced SLO pages nobody; its firing alerts open when the silence ends
        for alert in firing:
            targets = incident_targets(slo, alert.key)
            if targets and open_incidents(session, alert, slo, targets, now):
                queued = True
            if alert.key == PAGE and escalate(session, alert, slo, now):
                queued = True
        return queued


def escalate(session: Session, alert: AlertRecord, slo: SLO, now: datetime) -> bool:
    """A page unacknowledged past its escalation delay: mention the on-call group in its thread and
    escalate it in the tools, once. Acknowledging before then stops it."""
    fired = utc(alert.fired_at)
    if fired is None or alert.acknowledged_by or alert.escalated_at is not None:
        return False
    after = escalate_after(slo, alert.key)
    if now - fired < after:
        return False
    alert.escalated_at = now
    session.add(alert)
    assert alert.id is not None
    alert_store.add_event(
        session=session,
        alert_id=alert.id,
        at=now,
        event="escalated",
        detail=f"unacknowledged for {span(after)}",
    )
    group = oncall_group(slo, alert.key)
    who = f"<!subteam^{group}>" if group else "On-call"
    text = (
        f"{who}: this page has been unacknowledged for {span(now - fired)}. "
        "Please acknowledge it (or silence it, with a reason)."
    )
    queue_note(session, alert, text, now)
    queue_upstream(session, alert, ESCALATE, now, note=f"Unacknowledged in Slack for {span(now - fired)}")
    return True
