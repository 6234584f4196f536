"""`/slo maintenance`: one-off maintenance windows made, listed and cancelled from Slack.

Only responders of the SLO may make or cancel one (the rule of `/slo silence`); each row keeps who
made it, why, and who cancelled it (the audit trail), and each is logged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import Session

from bot.adjustments import Adjustment, Interval, current_and_next, occurrences
from bot.domain import SLO
from bot.durations import format_duration, parse_duration
from bot.slack import blocks
from bot.slack.blocks import StatusLine
from bot.slack.deps import SlackDeps
from bot.store import adjustments as adjustment_store
from bot.store import repo
from bot.store.models import AdjustmentRecord, SLORecord

USAGE = "/slo maintenance SLO START DURATION [reason] | list | cancel ID  (START: now or 2026-12-06T02:00Z)"
MAX_WINDOW = timedelta(days=7)
HORIZON = timedelta(days=35)  # how far ahead the next window of a recurring one is looked for
LIST_SINCE = timedelta(days=7)  # `list` shows windows that ended at most this long ago
Payload = dict[str, Any]
log = logging.getLogger(__name__)


ChannelsOf = Callable[[Session, SLORecord, SlackDeps], list[str]]
UnknownSLO = Callable[[Session, str], Payload]


def handle_maintenance(
    deps: SlackDeps, user: str, args: Sequence[str], channels_of: ChannelsOf, unknown_slo: UnknownSLO
) -> Payload:
    """`channels_of` and `unknown_slo` are the command module's: who may act, and the answer to a
    misspelt SLO, the same as for `/slo silence`."""
    verb = args[0].lower() if args else ""
    now = deps.clock()
    if verb == "list" and len(args) == 1:
        return _list(deps, now)
    if verb == "cancel":
        if len(args) != 2 or not args[1].lstrip("#").isdigit():
            return _usage("Which window? `/slo maintenance list` shows their numbers.")
        ident = int(args[1].lstrip("#"))
        with Session(deps.engine) as session:
            found = session.get(AdjustmentRecord, ident)
            if found is None or found.origin != adjustment_store.SLACK:
                return blocks.text_payload(f"There is no maintenance window #{ident} made in Slack.")
            names = _slos_of(found)
            record = repo.get_slo(session=session, name=names[0]) if names else None
            if record is not None:
                denied = deps.responders.check(user, channels_of(session, record, deps))
                if denied:
                    return blocks.text_payload(denied)
            cancelled = adjustment_store.cancel(session=session, ident=ident, by=user, now=now)
            session.commit()
        if cancelled is None:
            return blocks.text_payload(f"Maintenance window #{ident} was cancelled already.")
        log.info("maintenance window #%d cancelled by %s", ident, user)
        return blocks.text_payload(f"🛠 Maintenance window #{ident} is cancelled.")
    if len(args) < 3:
        return _usage("Which SLO, from when, and for how long?")
    start = _start(args[1], now)
    if start is None:
        return _usage(f"`{blocks.escape_typed(args[1])}` is not `now` nor a time such as 2026-12-06T02:00Z.")
    try:
        length = parse_duration(args[2])
    except ValueError:
        return _usage(f"`{blocks.escape_typed(args[2])}` is not a duration.")
    if length > MAX_WINDOW:
        return _usage(f"{args[2]} is longer than the longest window made in Slack, 7d (declare it instead).")
    reason = " ".join(args[3:])
    with Session(deps.engine) as session:
        record = repo.get_slo(session=session, name=args[0])
        if record is None:
            return unknown_slo(session, args[0])
        denied = deps.responders.check(user, channels_of(session, record, deps))
        if denied:
            return blocks.text_payload(denied)
        name = record.name
        window = Adjustment(f"{name}-{start:%Y%m%d%H%M}", start, length, reason, slos=(name,))
        made = adjustment_store.add_one_off(session=session, adjustment=window, by=user, now=now)
        session.commit()
        number = made.id
    log.info(
        "maintenance window #%s on %s from %s for %s by %s: %s", number, name, start, length, user, reason
    )
    return blocks.text_payload(
        f"🛠 Maintenance window #{number} on `{name}`: {blocks.slack_time(start)} to "
        f"{blocks.slack_time(start + length)} ({format_duration(length)}). Its events count neither as "
        "good nor as bad, and no breach opens from them."
    )


def _usage(problem: str) -> Payload:
    return blocks.text_payload(f"{problem}\nUsage: `{USAGE}`")


def _start(text: str, now: datetime) -> datetime | None:
    if text.lower() == "now":
        return now
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        return None
    return None if at.tzinfo is None else at.astimezone(UTC)


def _slos_of(record: AdjustmentRecord) -> list[str]:
    return list(adjustment_store.as_adjustment(record).slos)


def _list(deps: SlackDeps, now: datetime) -> Payload:
    with Session(deps.engine) as session:
        made = adjustment_store.one_offs(session=session, since=now - LIST_SINCE)
        declared = [
            r for r in adjustment_store.in_force(session=session) if r.origin == adjustment_store.CATALOGUE
        ]
    lines = ["*Maintenance windows made in Slack* (the last 7 days and to come):"]
    for r in made:
        start = repo.utc(r.first_start) or now
        end = start + timedelta(seconds=r.duration_s)
        state = f", cancelled by <@{r.cancelled_by}>" if r.cancelled_by else ""
        why = f": {blocks.escape_typed(r.description)}" if r.description else ""
        lines.append(
            f"• #{r.id} `{', '.join(_slos_of(r))}` {blocks.slack_time(start)} to {blocks.slack_time(end)}, "
            f"by <@{r.created_by}>{state}{why}"
        )
    if not made:
        lines.append("• none")
    if declared:
        lines.append("*Declared in the catalogue:* " + ", ".join(f"`{r.name}`" for r in declared))
    return blocks.text_payload("\n".join(lines))


def window_lines(adjustments: Sequence[Adjustment], slo: SLO, now: datetime) -> list[str]:
    """`/slo show`'s lines: the windows open now and the next of each, for the SLO."""
    current, upcoming = current_and_next(adjustments, slo, now)

    def shown(adjustment: Adjustment, interval: Interval) -> str:
        why = f" ({blocks.escape_typed(adjustment.description)})" if adjustment.description else ""
        return f"{blocks.slack_time(interval[0])} to {blocks.slack_time(interval[1])}{why}"

    lines = [f"🛠 *In maintenance now:* {shown(a, i)}" for a, i in current]
    lines += [f"Next maintenance: {shown(a, i)}" for a, i in upcoming[:3]]
    return lines


def home_lines(adjustments: Sequence[Adjustment], shown: Sequence[StatusLine], now: datetime) -> list[str]:
    """The App Home's lines: each window that covers an SLO shown, under way now or the next one."""
    names = {line.name for line in shown} | {line.group for line in shown if line.group}
    services = {line.service for line in shown}
    out: list[tuple[datetime, str]] = []
    for adjustment in adjustments:
        covered = sorted(names & set(adjustment.slos)) + sorted(services & set(adjustment.services))
        if not covered:
            continue
        found = occurrences(adjustment, now, now + HORIZON)
        if not found:
            continue
        start, end = found[0]
        when = "🛠 *In maintenance now*" if start <= now else "Next maintenance"
        why = f" ({blocks.escape_typed(adjustment.description)})" if adjustment.description else ""
        scope = ", ".join(f"`{c}`" for c in covered)
        out.append((start, f"{when}: {scope}{why}, {blocks.slack_time(start)} to {blocks.slack_time(end)}"))
    return [text for _, text in sorted(out)]
