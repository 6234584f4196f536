"""Buttons on breach messages and on `/slo status` pages: ack first, check who acts, then change state.

The breach message itself is updated through the outbox (`chat.update`), like every other post.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session

from bot.alerting import FIRING
from bot.catalogue.stored import slo_of
from bot.durations import parse_duration
from bot.mrkdwn import escape
from bot.routing import all_incident_targets
from bot.slack.commands import FAILED, channels_of, status_page
from bot.slack.deps import SlackDeps
from bot.slack.notify import record_action, silence_slo, unsilence_slo
from bot.slack.refunds import refund_breach, undo_refund
from bot.store import breaches as breach_store
from bot.store.incidents import open_incidents, vendor
from bot.store.models import BreachRecord, SLORecord

Respond = Callable[..., Any]
log = logging.getLogger(__name__)


def _deny(respond: Respond, text: str) -> None:
    respond(response_type="ephemeral", replace_original=False, text=text)


def handle_alert_action(
    deps: SlackDeps, ack: Callable[[], Any], body: dict[str, Any], respond: Respond
) -> None:
    """Acknowledge / Unacknowledge / Silence (select) / Unsilence / Declare incident on an alert message,
    and Refund / Undo refund on a resolved one.

    Acknowledged before anything else: who may act is asked of Slack, which can be slow, and the
    outcome comes afterwards (the message through the outbox, a refusal through `respond()`)."""
    ack()
    try:
        _alert_action(deps, body, respond)
    except Exception:  # after the ack Slack shows no error of its own: say it, never stay silent
        log.exception("handling a click on an alert message failed")
        _deny(respond, FAILED)


def _alert_action(deps: SlackDeps, body: dict[str, Any], respond: Respond) -> None:
    action = (body.get("actions") or [{}])[0]
    action_id = action.get("action_id", "")
    user = (body.get("user") or {}).get("id", "")
    if action_id == "alert_silence":
        alert_text, _, duration = str((action.get("selected_option") or {}).get("value", "")).partition(":")
    else:
        alert_text, duration = str(action.get("value", "")), ""
    if not alert_text.isdigit():
        _deny(respond, "This button is from an older slo-bot message; use `/slo status`.")
        return
    now = deps.clock()
    with Session(deps.engine) as session:
        found = breach_store.with_slo(session, int(alert_text))
        if found is None:
            _deny(respond, "This breach no longer exists (its SLO was removed).")
            return
        breach, record = found
        # the SLO's own channels, not every channel the message went to: a subscribed channel's
        # members see the alert and its buttons, but are not its responders
        denied = deps.responders.check(user, channels_of(session, record, deps))
        if denied:
            _deny(respond, denied)
            return
        if action_id in ("alert_ack", "alert_unack"):
            if breach.state != FIRING:
                _deny(respond, "This breach has resolved already.")
                return
            deps.conversation.acknowledge(session, breach, user, now, on=action_id == "alert_ack")
        elif action_id == "alert_silence":
            try:
                length = parse_duration(duration)
            except ValueError:
                _deny(respond, f"`{escape(duration)}` is not a duration.")
                return
            silence_slo(session, record, now + min(length, timedelta(days=7)), "", user, now)
        elif action_id == "alert_unsilence":
            unsilence_slo(session, record, user, now)
        elif action_id in ("alert_refund", "alert_unrefund"):
            # a button has no words: the reason says where it came from; `/slo refund` takes one
            if action_id == "alert_refund":
                done, answer = refund_breach(
                    deps, session, breach, record, user, "marked on its message", now
                )
            else:
                done, answer = undo_refund(deps, session, breach, user, now)
            if not done:
                _deny(respond, answer)
                return
        elif action_id == "alert_declare":
            problem = declare_incident(deps, session, breach, record, user, now)
            if problem:
                _deny(respond, problem)
                return
        session.commit()
    deps.wake_delivery()


def declare_incident(
    deps: SlackDeps, session: Session, breach: BreachRecord, record: SLORecord, user: str, now: datetime
) -> str:
    """Open the breach's incident in every incident tool of its SLO, now, whatever its severity.
    Returns what stops it, or "" when it is on its way."""
    slo = slo_of(record)
    targets = all_incident_targets(slo)
    if not targets:
        return (
            f"No incident tool is set up for `{record.name}`: give one of its AlertPolicies a "
            "pagerduty, opsgenie, squadcast or webhook AlertNotificationTarget, or name one in its "
            "`slo-bot/incident-targets` annotation."
        )
    if breach.state != FIRING:
        return "This breach has resolved already."
    opened = open_incidents(session, breach, slo, targets, now, declared_by=user)
    if not opened:
        return "The incident is already open in " + ", ".join(f"`{t.name}`" for t in targets) + "."
    names = ", ".join(f"{vendor(i.kind)} (`{i.target}`)" for i in opened)
    record_action(session, breach, "declared", user, now, detail=names)
    text = f"<@{user}> declared an incident: opening it in {names}."
    deps.conversation.note(session, breach, text, now, by=user)
    deps.conversation.changed(session, breach, now)
    return ""


def handle_status_page(
    deps: SlackDeps, ack: Callable[[], Any], body: dict[str, Any], respond: Respond
) -> None:
    ack()
    action = (body.get("actions") or [{}])[0]
    try:
        value = json.loads(action.get("value") or "{}")
        query, page = str(value.get("q", "")), int(value.get("page", 1))
    except (ValueError, TypeError, AttributeError):  # a button of another shape: the first page
        query, page = "", 1
    try:
        shown = status_page(deps, query, page)
    except Exception:  # after the ack Slack shows no error of its own: say it, never stay silent
        log.exception("turning a /slo status page failed")
        _deny(respond, FAILED)
        return
    respond(response_type="ephemeral", replace_original=True, **shown)


def handle_link(ack: Callable[[], Any]) -> None:
    """ "View SLO" opens its URL in the browser; Slack still sends the click, which needs an ack."""
    ack()
