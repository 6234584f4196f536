"""Refunds: a responder marks a resolved breach a false positive (`/slo refund BREACH reason` or the
button on its message), and can take it back. Its episode then counts like a maintenance window:
neither good nor bad, its budget given back from the next evaluation.

Who and why go to the breach's trail, its message and its thread (every destination of the
conversation); the refund row keeps them too.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlmodel import Session

from bot import breaches, episodes
from bot.alerting import FIRING
from bot.catalogue.stored import slo_of
from bot.messages import percent
from bot.mrkdwn import escape
from bot.slack import blocks
from bot.slack.deps import SlackDeps
from bot.slack.notify import record_action
from bot.store import breaches as breach_store
from bot.store import refunds as refund_store
from bot.store.models import BreachRecord, SLORecord
from bot.store.repo import utc

USAGE = "/slo refund BREACH reason  |  /slo refund undo BREACH  (a resolved breach's number)"
Payload = dict[str, Any]
ChannelsOf = Callable[[Session, SLORecord, SlackDeps], list[str]]
log = logging.getLogger(__name__)


def handle_refund(deps: SlackDeps, user: str, args: Sequence[str], channels_of: ChannelsOf) -> Payload:
    """`channels_of`: the command module's rule of who may act on an SLO's breaches."""
    undo = bool(args) and args[0].lower() == "undo"
    words = list(args[1:] if undo else args)
    if not words or not words[0].lstrip("#").isdigit():
        return blocks.text_payload(f"Which breach? The number on its message.\nUsage: `{USAGE}`")
    number = int(words[0].lstrip("#"))
    why = " ".join(words[1:]).strip()
    if not undo and not why:
        return blocks.text_payload(f"Why is it a false positive? Say it after the number.\nUsage: `{USAGE}`")
    now = deps.clock()
    with Session(deps.engine) as session:
        found = breach_store.with_slo(session, number)
        if found is None:
            return blocks.text_payload(f"There is no breach #{number}.")
        breach, record = found
        denied = deps.responders.check(user, channels_of(session, record, deps))
        if denied:
            return blocks.text_payload(denied)
        if undo:
            _, answer = undo_refund(deps, session, breach, user, now)
        else:
            _, answer = refund_breach(deps, session, breach, record, user, why, now)
        session.commit()
    deps.wake_delivery()
    return blocks.text_payload(answer)


def refund_breach(
    deps: SlackDeps,
    session: Session,
    breach: BreachRecord,
    record: SLORecord,
    user: str,
    why: str,
    now: datetime,
) -> tuple[bool, str]:
    """Refund the breach: whether it was, and the answer for the person who asked."""
    if breach.state == FIRING:
        return False, f"Breach #{breach.id} is still open: refund it once it has resolved."
    if breach.kind != breaches.BURN:
        return False, f"Breach #{breach.id} is a {breach.kind} breach: only burn-rate breaches spend budget."
    # the span its cost was measured over: what it spent is exactly what is given back
    span = episodes.episode_span(slo_of(record), breach)
    if refund_store.refund(session=session, breach=breach, span=span, by=user, why=why, now=now) is None:
        return False, f"Breach #{breach.id} is refunded already."
    record_action(session, breach, "refunded", user, now, detail=why)
    spent = (
        "its budget"
        if breach.spent_ratio is None
        else f"the {percent(breach.spent_ratio)} of the budget it spent"
    )
    note = (
        f"<@{user}> marked this breach a false positive: {escape(why)}. {spent[0].upper()}{spent[1:]} "
        f"is given back from the next evaluation (`/slo refund undo {breach.id}` takes it back)."
    )
    deps.conversation.note(session, breach, note, now, by=user)
    deps.conversation.changed(session, breach, now)
    log.info("breach #%s of %s refunded by %s: %s", breach.id, record.name, user, why)
    return True, f"Breach #{breach.id} of `{record.name}` is refunded: {spent} is given back."


def undo_refund(
    deps: SlackDeps, session: Session, breach: BreachRecord, user: str, now: datetime
) -> tuple[bool, str]:
    assert breach.id is not None
    if refund_store.undo(session=session, breach_id=breach.id, by=user, now=now) is None:
        return False, f"Breach #{breach.id} is not refunded."
    record_action(session, breach, "refund undone", user, now)
    note = f"<@{user}> took the refund back: this breach's budget counts again from the next evaluation."
    deps.conversation.note(session, breach, note, now, by=user)
    deps.conversation.changed(session, breach, now)
    log.info("the refund of breach #%s undone by %s", breach.id, user)
    return True, f"The refund of breach #{breach.id} is undone: its budget counts again."


def show_lines(session: Session, slo_id: int) -> list[str]:
    """`/slo show`'s lines: the SLO's breaches refunded, by whom and why."""
    lines = []
    for refund, breach in refund_store.of_slo(session=session, slo_id=slo_id):
        at = utc(refund.at)
        assert at is not None
        why = blocks.escape_typed(refund.why)
        lines.append(f"↩️ Breach #{breach.id} refunded by <@{refund.by}> at {blocks.slack_time(at)}: {why}")
    return lines
