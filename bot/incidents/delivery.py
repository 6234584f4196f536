"""Delivery of the outbox to the incident tools: in order per breach and target, retried until the tool
takes it. An outage of a tool delays its calls, never loses them; a refusal (a bad key) is logged,
counted and said in the breach's Slack thread, since a human must fix the target."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

import httpx
from sqlalchemy import Engine
from sqlmodel import Session

from bot.annotations import dashboard_of
from bot.catalogue.stored import slo_of
from bot.conversation import Conversation
from bot.domain import SLO, NotificationTarget
from bot.incidents import make_target
from bot.incidents.base import (
    ACKNOWLEDGE,
    RESOLVE,
    TRIGGER,
    UNACKNOWLEDGE,
    Incident,
    IncidentEvent,
    IncidentTarget,
    TargetRejected,
    TargetUnavailable,
)
from bot.messages import label
from bot.metrics import METRICS
from bot.mrkdwn import escape
from bot.policy import PAGE
from bot.routing import all_incident_targets
from bot.runner import utc_now
from bot.store import breaches as breach_store
from bot.store import repo
from bot.store import slack as slack_store
from bot.store.incidents import KIND, adopt_external_id, incident_of, move_state, vendor
from bot.store.models import BreachRecord, IncidentRecord, OutboxRecord, SLORecord
from bot.worker import OutboxWorker

log = logging.getLogger(__name__)
MAX_BACKOFF = timedelta(minutes=1)  # a page waits for no one: retry often through an outage
STATES = {TRIGGER: "triggered", ACKNOWLEDGE: "acknowledged", UNACKNOWLEDGE: "triggered", RESOLVE: "resolved"}


def backoff_for(attempts: int) -> timedelta:
    return min(MAX_BACKOFF, timedelta(seconds=2 ** min(attempts, 9)))


class IncidentDelivery(OutboxWorker):
    name = "incidents"
    kinds = (KIND,)

    def __init__(
        self,
        engine: Engine,
        client: httpx.Client,
        clock: Callable[[], datetime] = utc_now,
        on_slack: Callable[[], None] | None = None,
        conversation: Conversation | None = None,
    ) -> None:
        super().__init__(engine, clock)
        self.client = client
        self.on_slack = on_slack  # wake the other deliveries: a note or a message update was queued
        self.conversation = conversation  # where what the tools answered is told

        self._targets: dict[str, IncidentTarget] = {}
        self.paused_targets: dict[str, datetime] = {}  # a 429 pauses that tool only

    def paused(self, destination: str | None) -> bool:
        until = self.paused_targets.get(destination or "")
        return until is not None and self.clock() < until

    def paused_destinations(self) -> dict[str, datetime]:
        now = self.clock()
        return {target: until for target, until in self.paused_targets.items() if now < until}

    def _deliver(self, entry_id: int) -> bool:
        with Session(self.engine, expire_on_commit=False) as session:
            entry = session.get(OutboxRecord, entry_id)
            if entry is None or entry.status != "pending":
                return True
            now = self.clock()
            try:
                slack_changed = self._send(session, entry, now)
            except TargetUnavailable as err:
                entry.attempts += 1
                delay = err.retry_after if err.retry_after is not None else backoff_for(entry.attempts)
                entry.next_attempt_at = now + delay
                if err.retry_after is not None:
                    self.paused_targets[entry.channel or ""] = now + err.retry_after
                entry.last_error = str(err)
                session.add(entry)
                session.commit()
                METRICS.incident_failed("retry")
                log.warning("incident tool: %s (entry %s, retry in %s)", err, entry.id, delay)
                return False
            except TargetRejected as err:
                session.rollback()
                self._refused(session, entry_id, str(err), now)
                return True
            except Exception as err:  # a bug, a definition that no longer builds: back off, keep order
                log.exception("delivering incident entry %s failed", entry_id)
                session.rollback()
                entry = session.get(OutboxRecord, entry_id)
                if entry is not None:
                    entry.attempts += 1
                    entry.next_attempt_at = now + min(
                        MAX_BACKOFF, timedelta(seconds=2 ** min(entry.attempts, 9))
                    )
                    entry.last_error = f"{err.__class__.__name__}: {err}"
                    session.add(entry)
                    session.commit()
                METRICS.incident_failed("error")
                return False
            entry.status = "done"
            entry.done_at = now
            session.add(entry)
            session.commit()
        METRICS.incident_call("ok")
        if slack_changed and self.on_slack is not None:
            self.on_slack()
        return True

    def _send(self, session: Session, entry: OutboxRecord, now: datetime) -> bool:
        """Make the call; True when the other destinations have something new to show (queued in this
        transaction)."""
        found = breach_store.with_slo(session, entry.breach_id or 0)
        if found is None:
            entry.last_error = "skipped: the breach's SLO was removed"
            return False
        breach, record = found
        incident = incident_of(session=session, breach_id=breach.id or 0, target=entry.channel or "")
        if incident is None:
            entry.last_error = "skipped: no incident for this target"
            return False
        slo = slo_of(record)
        definition = next((t for t in all_incident_targets(slo) if t.name == incident.target), None)
        if definition is None:
            raise TargetRejected(f"target {incident.target!r} is no longer in the definition of {slo.name}")
        payload = json.loads(entry.payload)
        action = str(payload.get("action", ""))
        event = IncidentEvent(
            action=action,
            incident=build_incident(session, slo, record, breach, incident),
            at=repo.utc(entry.created_at) or now,
            actor=payload.get("actor"),
            note=str(payload.get("note") or ""),
            id=f"slo-bot-{entry.id}",
        )
        sent = self._target(definition).send(event)
        entry.last_error = "skipped: the tool has no such action" if sent.skipped else None
        if sent.skipped:
            return False
        before, after = incident.state, STATES.get(action, incident.state)  # (as read before the call)
        if sent.reference and action == TRIGGER and not incident.external_id:
            adopt_external_id(session=session, incident=incident, reference=sent.reference[:64])
        incident.last_error = None
        incident.updated_at = now
        session.add(incident)
        # the message shows each tool's state. A webhook that landed during the call told a newer
        # one (and queued its own update): it is kept.
        changed = after != before and move_state(
            session=session, incident=incident, expected=before, state=after, now=now
        )
        declared = action == TRIGGER and incident.declared_by is not None
        if self.conversation is None:
            return False
        if declared:
            self.conversation.note(
                session,
                breach,
                f"Incident opened in {vendor(incident.kind)} (`{incident.target}`), declared by "
                f"<@{incident.declared_by}>; key `{incident.dedup_key}`.",
                now,
                by=incident.declared_by,
                source=self.name,
            )
        if changed:
            self.conversation.changed(session, breach, now, source=self.name)
        return changed or declared

    def _refused(self, session: Session, entry_id: int, reason: str, now: datetime) -> None:
        entry = session.get(OutboxRecord, entry_id)
        if entry is None:
            return
        entry.status = "failed"
        entry.last_error = reason
        session.add(entry)
        found = breach_store.with_slo(session, entry.breach_id or 0)
        incident = None
        if found is not None:
            incident = incident_of(session=session, breach_id=found[0].id or 0, target=entry.channel or "")
        if found is not None and incident is not None:
            incident.last_error = reason
            incident.updated_at = now
            session.add(incident)
            action = json.loads(entry.payload).get("action", "call")
            said = escape(reason)  # may quote the tool's answer: shown, never acted on by Slack
            text = f"{vendor(incident.kind)} (`{incident.target}`) refused the {action}: {said}"
            # `by`: like a person's action, it is said even while the SLO is silenced
            if self.conversation is not None:
                self.conversation.note(session, found[0], text, now, by="slo-bot", source=self.name)
        session.commit()
        METRICS.incident_failed("refused")
        log.error("incident tool refused entry %s for good: %s", entry_id, reason)
        if self.on_slack is not None:
            self.on_slack()

    def _target(self, definition: NotificationTarget) -> IncidentTarget:
        key = json.dumps([definition.name, definition.target, dict(definition.annotations)], sort_keys=True)
        target = self._targets.get(key)
        if target is None:
            target = self._targets[key] = make_target(definition, self.client)
        return target


def build_incident(
    session: Session, slo: SLO, record: SLORecord, breach: BreachRecord, incident: IncidentRecord
) -> Incident:
    """The breach as the tools see it, from what is stored now (its burn rates, the latest status)."""
    status = repo.status_of(repo.latest_snapshot(session, record.id or 0))
    burns = breach_store.burn_rates(breach)
    severity = PAGE if incident.declared_by else breach.severity  # a declared incident pages
    worst = max((b for b in burns.values() if b is not None), default=None)
    summary = f"{label(severity)}: {slo.name} ({slo.service})"
    if worst is not None:
        summary += f" burning its error budget at {worst:.1f}x"
    details: dict[str, object] = {
        "slo": slo.name,
        "service": slo.service,
        "breach": breach.id,
        "alert": severity,
        "signals": [s.key for s in breach_store.signals_of(session=session, breach_id=breach.id or 0)],
        "objective": f"{slo.objective.target_ratio * 100:g} % over {slo.window.spec}",
        "burn_rates": burns,
        "why": breach.reason,
        "fired_at": repo.utc(breach.opened_at),
    }
    if status is not None:
        details["budget_remaining"] = status.remaining_ratio
        details["exhaustion_at"] = status.exhaustion_at
    if incident.declared_by:
        details["declared_by"] = f"{incident.declared_by} (Slack)"
    links: list[tuple[str, str]] = []
    for message in slack_store.messages_of(session=session, breach_id=breach.id or 0):
        if message.ts and (message.posted_channel or message.channel).startswith(("C", "G")):
            channel = message.posted_channel or message.channel
            links.append(
                ("Slack message", f"https://slack.com/archives/{channel}/p{message.ts.replace('.', '')}")
            )
    dashboard = dashboard_of(slo.annotations)
    if dashboard:
        links.append(("Dashboard", dashboard))
    return Incident(
        dedup_key=incident.dedup_key,
        slo=slo.name,
        service=slo.service,
        severity=severity,
        summary=summary[:120],
        details=details,
        links=tuple(links),
    )
