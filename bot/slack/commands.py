"""`/slo` answers: acknowledged at once, then parsed, read from the store and answered ephemerally
through the command's `response_url`.

Never a live source query; but who may act is asked of Slack (`conversations.members`) and the
database may be busy, so the acknowledgement does not wait for either (Slack gives up after 3 s).
"""

from __future__ import annotations

import difflib
import json
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, col, select

from bot import composite, episodes, exhaustion, impact, parts
from bot.annotations import CHANNEL, dashboard_of, parse_channels
from bot.burndown import has_chart
from bot.catalogue.stored import slo_of
from bot.domain import SLO
from bot.durations import format_duration, parse_duration
from bot.messages import headline, percent, runs_out_text, span, spent_since_text, window_name
from bot.mrkdwn import escape
from bot.slack import blocks, digests, reporting
from bot.slack.deps import SlackDeps
from bot.slack.maintenance import USAGE as MAINTENANCE_USAGE
from bot.slack.maintenance import handle_maintenance, window_lines
from bot.slack.notify import channels_for, silence_slo, unsilence_slo
from bot.slack.refunds import USAGE as REFUND_USAGE
from bot.slack.refunds import handle_refund, show_lines
from bot.slack.state import detail, fold
from bot.slack.uploads import queue_chart
from bot.store import adjustments as adjustment_store
from bot.store import breaches as breach_store
from bot.store import groups as group_store
from bot.store import repo
from bot.store import slack as slack_store
from bot.store.models import BreachRecord, SlackMessageRecord, SLORecord

USAGE = {
    "status": "/slo status [SERVICE|SLO] [page N]",
    "list": "/slo list",
    "show": "/slo show SLO",
    "ack": "/slo ack BREACH  (the number on its message, or an SLO name: its open breaches)",
    "silence": "/slo silence SLO DURATION [reason]  (e.g. 30m, 4h, 1d; at most 7d)",
    "unsilence": "/slo unsilence SLO",
    "subscribe": "/slo subscribe SERVICE [#channel]",
    "report": "/slo report [SERVICE] [7d|30d|quarter]  (SLI, budget and breaches over the period)",
    "digest": "/slo digest [#channel] WEEKDAY HH:MM [TIME_ZONE]  (a weekly digest; `list`, `off`)",
    "maintenance": MAINTENANCE_USAGE,
    "refund": REFUND_USAGE,
    "help": "/slo help",
}
HELP = "*slo-bot* answers only you, from what it last evaluated:\n" + "\n".join(
    f"• `{u}`" for u in USAGE.values()
)
MAX_SILENCE = timedelta(days=7)
FAILED = "slo-bot could not do this just now (an internal error, logged); try again in a minute."
_CHANNEL = re.compile(r"^<#(C[A-Z0-9]+|G[A-Z0-9]+)(?:\|[^>]*)?>$")

Payload = dict[str, Any]
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Invocation:
    user: str
    channel: str
    words: tuple[str, ...]
    response_url: str = ""


def handle_slo_command(
    deps: SlackDeps, ack: Callable[..., Any], command: dict[str, Any], respond: Callable[..., Any]
) -> None:
    ack()  # first: an empty 200 shows nothing; the answer follows at the response_url
    invocation = Invocation(
        user=command.get("user_id", ""),
        channel=command.get("channel_id", ""),
        words=tuple(str(command.get("text") or "").split()),
        response_url=str(command.get("response_url") or ""),
    )
    try:
        payload = answer(deps, invocation)
    except Exception:  # after the ack Slack shows no error of its own: say it, never stay silent
        log.exception("answering /slo %s failed", " ".join(invocation.words))
        payload = blocks.text_payload(FAILED)
    respond(response_type="ephemeral", **payload)


def answer(deps: SlackDeps, inv: Invocation) -> Payload:
    verb = inv.words[0].lower() if inv.words else "help"
    args = inv.words[1:]
    handlers: dict[str, Callable[[SlackDeps, Invocation, Sequence[str]], Payload]] = {
        "status": _status,
        "list": _list,
        "show": _show,
        "ack": _ack,
        "silence": _silence,
        "unsilence": _unsilence,
        "subscribe": _subscribe,
        "report": _report,
        "digest": _digest,
        "maintenance": lambda deps, inv, args: handle_maintenance(
            deps, inv.user, args, channels_of, _unknown_slo
        ),
        "refund": lambda deps, inv, args: handle_refund(deps, inv.user, args, channels_of),
        "help": lambda *_: blocks.text_payload(HELP),
    }
    handler = handlers.get(verb)
    if handler is None:
        close = difflib.get_close_matches(verb, list(handlers), n=1, cutoff=0.6)
        hint = f"Did you mean `/slo {close[0]}`?\n\n" if close else ""
        return blocks.text_payload(f"I don't know `{blocks.escape_typed(verb)}`. {hint}{HELP}")
    return handler(deps, inv, args)


def _usage(verb: str, problem: str) -> Payload:
    return blocks.text_payload(f"{problem}\nUsage: `{USAGE[verb]}`")


def _unknown_slo(session: Session, name: str) -> Payload:
    names = slack_store.slo_names(session=session)
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(f'`{c}`' for c in close)}?" if close else ""
    listing = "" if close else " `/slo list` shows them all."
    return blocks.text_payload(f"There is no SLO called `{blocks.escape_typed(name)}`.{hint}{listing}")


def _status(deps: SlackDeps, inv: Invocation, args: Sequence[str]) -> Payload:
    page = 1
    words = list(args)
    if len(words) >= 2 and words[-2].lower() == "page":
        if not words[-1].isdigit():
            return _usage("status", f"`{blocks.escape_typed(words[-1])}` is not a page number.")
        page = int(words[-1])
        words = words[:-2]
    query = " ".join(words)
    return status_page(deps, query, page)


def status_page(deps: SlackDeps, query: str, page: int) -> Payload:
    with Session(deps.engine) as session:
        lines = deps.board.lines(session, deps.clock())
        if query:
            by_service = [line for line in lines if line.service == query]
            # a grouped SLO's name shows each of its members, a member's name that member
            by_name = [line for line in lines if query in (line.name, line.group)]
            if not by_service and not by_name:
                services = sorted({line.service for line in lines})
                names = [line.name for line in lines] + sorted({line.group for line in lines if line.group})
                close = difflib.get_close_matches(query, services + names, n=3)
                hint = f" Did you mean {', '.join(f'`{c}`' for c in close)}?" if close else ""
                return blocks.text_payload(f"No service or SLO called `{blocks.escape_typed(query)}`.{hint}")
            # (the group's own line says "no routes yet" until it has members)
            lines = fold(by_service) if by_service else [x for x in by_name if x.folded is None] or by_name
        else:
            lines = fold(lines)
    title = f"SLO status: {query}" if query else "SLO status"
    return blocks.status_payload(lines, page=page, query=query, title=title)


def _list(deps: SlackDeps, inv: Invocation, args: Sequence[str]) -> Payload:
    with Session(deps.engine) as session:
        records = repo.list_slos(session=session)
        counts = group_store.member_counts(session=session)
    by_service: dict[str, list[str]] = {}
    for record in records:
        label = f"`{record.name}`"
        if record.group_by:  # a grouped SLO: "`checkout-routes` (12 by route)", members `name[value]`
            label += f" ({counts.get(record.id or 0, 0)} by {record.group_by})"
        by_service.setdefault(record.service, []).append(label)
    if not by_service:
        return blocks.text_payload("No SLOs yet: apply a catalogue with `slo-bot apply FILE`.")
    lines: list[str] = []
    for service, names in sorted(by_service.items()):
        lines += _wrapped(f"*{service}*: ", names)
    return blocks.text_payload(f"{len(records)} SLO(s):\n" + "\n".join(lines))


def _wrapped(head: str, items: Sequence[str], limit: int = blocks.MAX_SECTION) -> list[str]:
    """`head` + the items, comma-separated, over as many lines as a section's limit needs:
    a long service would otherwise lose names to Slack's 3,000 characters."""
    lines: list[str] = []
    line = head
    for i, item in enumerate(items):
        item += "," if i < len(items) - 1 else ""
        if line.strip() and len(line) + len(item) + 1 > limit:
            lines.append(line.rstrip())
            line = ""
        line += item + " "
    lines.append(line.rstrip())
    return lines


MAX_EPISODES = 20  # the newest; a message has room for a few thousand characters of them


def _show(deps: SlackDeps, inv: Invocation, args: Sequence[str]) -> Payload:
    if len(args) != 1:
        return _usage("show", "Which SLO?")
    now = deps.clock()
    with Session(deps.engine) as session:
        found = detail(session, args[0], now)
        if found is None:
            return _unknown_slo(session, args[0])
        past: list[episodes.Episode] = []
        outlook = None
        if found.slo is not None and found.record.id is not None:
            past = episodes.episodes_in_window(session, found.slo, found.record.id, now)
            status = repo.status_of(found.snapshot)
            if status is not None:
                outlook = exhaustion.outlook(session, found.slo, found.record.id, status)
        shown_parts = _parts(session, found.slo, found.record.id)
        windows = adjustment_store.load_exclusions(session=session).adjustments
        refunded = show_lines(session, found.record.id or 0)
    charted = found.slo is not None and has_chart(found.slo) and _queue_chart(deps, inv, found.record, now)
    record, slo, snap = found.record, found.slo, found.snapshot
    fields: list[tuple[str, str]] = []
    if slo is not None:
        fields.append(("Objective", f"{slo.objective.target_ratio * 100:g} % over {slo.window.spec}"))
    failing_since = repo.utc(record.failing_since)
    if failing_since is not None:
        fields.append(("Evaluation", "⚠️ " + blocks.not_evaluated(failing_since, record.failure)))
    if snap is None:
        fields.append(("Status", "not evaluated yet"))
    else:
        fields.append(("SLI", "no data" if snap.sli is None else f"{snap.sli * 100:.4f} %"))
        remaining = snap.remaining_ratio
        budget = percent(remaining)
        if slo is not None and remaining is not None:
            whole = impact.budget_minutes(slo, now)  # a calendar month's own length
            allowed = (1 - slo.objective.target_ratio) * snap.total
            budget += f" ({span(whole * max(remaining, 0))} of {span(whole)} of full outage"
            # a composite's events are its parts', each with a budget of its own: no one count
            budget += (
                ")"
                if slo.parts
                else f"; {allowed * max(remaining, 0):,.0f} of {allowed:,.0f} failed requests)"
            )
        fields.append(("Budget remaining", budget))
        burns = _burns(snap.burn_rates)
        fields.append(("Burn rate", burns or "-"))
        if outlook is not None and outlook.spent:
            spent = spent_since_text(outlook, blocks.slack_time)  # "exhausted since …, back at …"
            fields.append(("Budget", spent[0].upper() + spent[1:]))
        elif outlook is not None and slo is not None and outlook.remaining_ratio is not None:
            fields.append(("Budget runs out", runs_out_text(outlook, slo.window.spec, blocks.slack_time)))
        error = f" ({escape(snap.error)})" if snap.error else ""  # a server's words, as text
        fields.append(("State", snap.state + error))
        if snap.notes:
            fields.append(("Data quality", escape(snap.notes.replace("\n", "; "))))
        evaluated = repo.utc(snap.evaluated_at)
        if evaluated:
            fields.append(("Evaluated", blocks.slack_time(evaluated)))
    extra = [
        f"🚨 *{headline(b.kind, b.severity)}* open since {_since(b)} (breach #{b.id})"
        + (f", acknowledged by {blocks.slack_user(b.acknowledged_by)}" if b.acknowledged_by else "")
        for b in found.breaches
    ]
    if found.silence is not None:
        until = repo.utc(found.silence.until)
        reason = blocks.escape_typed(found.silence.reason)  # as typed: a typed @channel pings no one
        extra.append(
            f"🔕 Silenced by <@{found.silence.created_by}> until "
            f"{blocks.slack_time(until) if until else '?'} {reason}".rstrip()
        )
    if shown_parts:
        extra.append("*Parts* (weighted by their burn against their own objectives):")
        extra += shown_parts
    if slo is not None:
        extra += window_lines(windows, slo, now)
    extra += refunded
    dashboard = None if slo is None else dashboard_of(slo.annotations)
    if dashboard:
        extra.append(f"<{escape(dashboard).replace('|', '%7C')}|Dashboard>")
    page = deps.links.page(record.name, now) if deps.links else None
    if page and deps.links:  # signed and expiring: the page is readable with this link only
        days = deps.links.lifetime.days
        extra.append(f"<{escape(page).replace('|', '%7C')}|SLO page> (the link works for {days} days)")
    if slo is not None:
        window = window_name(slo.window.spec)
        extra.append(f"*Breaches in the {window} window:* {len(past) or 'none'}")
        extra += [
            "• " + episodes.episode_line(e, slo.window.spec, blocks.slack_time) for e in past[:MAX_EPISODES]
        ]
        if len(past) > MAX_EPISODES:
            extra.append(f"… and {len(past) - MAX_EPISODES} older ones.")
    if charted:
        extra.append(f"📈 The burn-down chart follows in <#{inv.channel}>, for everyone there to see.")
    title = f"{record.name} ({record.service})"
    return blocks.detail_payload(title, fields, extra)


def _parts(session: Session, slo: SLO | None, slo_id: int | None) -> list[str]:
    """A composite SLO's parts, one line each: weight, objective, SLI and budget as last evaluated."""
    if slo is None or slo_id is None or not slo.parts:
        return []
    ids = {part.name: part_id for _, part, part_id in parts.part_ids(session, slo, slo_id)}
    lines = []
    for name, share, target in composite.weights_shown(slo):
        part_id = ids.get(name)
        snap = None if part_id is None else repo.latest_snapshot(session, part_id)
        sli = (
            "not evaluated yet"
            if snap is None
            else "no data"
            if snap.sli is None
            else f"SLI {snap.sli * 100:.4f} %"
        )
        left = (
            ""
            if snap is None or snap.remaining_ratio is None
            else f", {percent(snap.remaining_ratio)} of its budget left"
        )
        lines.append(f"• `{name}`: weight {share * 100:.0f} %, objective {target * 100:g} %: {sli}{left}")
    return lines


def _report(deps: SlackDeps, inv: Invocation, args: Sequence[str]) -> Payload:
    return reporting.answer(deps, args, usage=USAGE["report"])


def _digest(deps: SlackDeps, inv: Invocation, args: Sequence[str]) -> Payload:
    def channel_of(text: str) -> str | None:
        match = _CHANNEL.match(text)
        return match.group(1) if match else None

    return digests.answer(deps, inv.user, inv.channel, args, channel_of)


def _queue_chart(deps: SlackDeps, inv: Invocation, record: SLORecord, now: datetime) -> bool:
    """The chart goes where it was asked for: an answer only you see cannot carry a file, so it is
    posted in the channel (drawn by the delivery worker, never while Slack waits for the answer)."""
    if not inv.channel or record.id is None:
        return False
    comment = f"Burn-down of *{escape(record.name)}*, asked for by <@{inv.user}> (`/slo show`)"
    with Session(deps.engine) as session:
        queue_chart(
            session,
            slo_id=record.id,
            channel=inv.channel,
            now=now,
            comment=comment,
            response_url=inv.response_url or None,
        )
        session.commit()
    deps.wake_delivery()
    return True


def _burns(text: str) -> str:
    values = json.loads(text)
    return ", ".join(f"{w} {'-' if v is None else f'{v:.2f}x'}" for w, v in values.items())


def _since(breach: BreachRecord) -> str:
    opened = repo.utc(breach.opened_at)
    return blocks.slack_time(opened) if opened else "?"


def channels_of(session: Session, record: SLORecord, deps: SlackDeps) -> list[str]:
    """The channels whose members may act on the SLO's alerts: its own (`slo-bot/channel`, its slack
    targets), else the default channel; by the IDs Slack answered with, where a channel was routed
    to by name and posted to already. Never a subscribed channel: `/slo subscribe` shows a service's
    alerts to more people, it does not let more people acknowledge or silence them."""
    try:
        routed = channels_for(slo_of(record), (), deps.default_channel)
    except Exception:  # the definition does not build (an unset secret): its own annotation still says
        routed = _annotated_channels(record) or ([deps.default_channel] if deps.default_channel else [])
    posted = {
        m.channel: m.posted_channel
        for m in session.exec(
            select(SlackMessageRecord)
            .join(BreachRecord, col(BreachRecord.id) == SlackMessageRecord.breach_id)
            .where(BreachRecord.slo_id == record.id, col(SlackMessageRecord.posted_channel).is_not(None))
        )
    }
    return list(dict.fromkeys(posted.get(c) or c for c in routed))


def _annotated_channels(record: SLORecord) -> list[str]:
    """The SLO document's own `slo-bot/channel`, read from the stored documents as written."""
    try:
        documents = json.loads(record.documents)
        for doc in documents if isinstance(documents, list) else []:
            metadata = doc.get("metadata") or {} if isinstance(doc, dict) else {}
            if doc.get("kind") == "SLO" and metadata.get("name") == record.name:
                return parse_channels(str((metadata.get("annotations") or {}).get(CHANNEL, "")))
    except (ValueError, AttributeError, TypeError):  # unreadable: no channel of its own to trust
        return []
    return []


def _ack(deps: SlackDeps, inv: Invocation, args: Sequence[str]) -> Payload:
    if len(args) != 1:
        return _usage("ack", "Which breach?")
    target = args[0].lstrip("#")
    now = deps.clock()
    with Session(deps.engine) as session:
        if target.isdigit():
            found = breach_store.with_slo(session, int(target))
            if found is None or found[0].state != "firing":
                return blocks.text_payload(f"Breach #{target} is not open (or does not exist).")
            open_now, record = [found[0]], found[1]
        else:
            record_or_none = repo.get_slo(session=session, name=target)
            if record_or_none is None:
                return _unknown_slo(session, target)
            record = record_or_none
            open_now = breach_store.open_breaches(session=session, slo_id=record.id or 0)
            if not open_now:
                return blocks.text_payload(f"`{record.name}` has no open breach to acknowledge.")
        denied = deps.responders.check(inv.user, channels_of(session, record, deps))
        if denied:
            return blocks.text_payload(denied)
        name = record.name  # read before the commit expires it
        changed = [
            f"#{b.id} ({headline(b.kind, b.severity)})"
            for b in open_now
            if deps.conversation.acknowledge(session, b, inv.user, now, on=True)
        ]
        session.commit()
    deps.wake_delivery()
    if not changed:
        return blocks.text_payload("Already acknowledged.")
    return blocks.text_payload(f"Acknowledged breach {', '.join(changed)} of `{name}`.")


def _silence(deps: SlackDeps, inv: Invocation, args: Sequence[str]) -> Payload:
    if len(args) < 2:
        return _usage("silence", "Which SLO, and for how long?")
    try:
        length = parse_duration(args[1])
    except ValueError:
        return _usage("silence", f"`{blocks.escape_typed(args[1])}` is not a duration.")
    if length > MAX_SILENCE:
        return _usage("silence", f"{args[1]} is longer than the longest silence, 7d.")
    reason = " ".join(args[2:])
    now = deps.clock()
    with Session(deps.engine) as session:
        record = repo.get_slo(session=session, name=args[0])
        if record is None:
            return _unknown_slo(session, args[0])
        denied = deps.responders.check(inv.user, channels_of(session, record, deps))
        if denied:
            return blocks.text_payload(denied)
        until = now + length
        name = record.name
        silence_slo(session, record, until, reason, inv.user, now)
        session.commit()
    deps.wake_delivery()
    return blocks.text_payload(
        f"🔕 `{name}` is silenced for {format_duration(length)}, until {blocks.slack_time(until)}."
    )


def _unsilence(deps: SlackDeps, inv: Invocation, args: Sequence[str]) -> Payload:
    if len(args) != 1:
        return _usage("unsilence", "Which SLO?")
    now = deps.clock()
    with Session(deps.engine) as session:
        record = repo.get_slo(session=session, name=args[0])
        if record is None:
            return _unknown_slo(session, args[0])
        denied = deps.responders.check(inv.user, channels_of(session, record, deps))
        if denied:
            return blocks.text_payload(denied)
        name = record.name
        ended = unsilence_slo(session, record, inv.user, now)
        session.commit()
    deps.wake_delivery()
    return blocks.text_payload(
        f"🔔 `{name}` is no longer silenced." if ended else f"`{name}` was not silenced."
    )


def _subscribe(deps: SlackDeps, inv: Invocation, args: Sequence[str]) -> Payload:
    if len(args) not in (1, 2):
        return _usage("subscribe", "Which service?")
    channel = inv.channel
    if len(args) == 2:
        match = _CHANNEL.match(args[1])
        if match is None:
            return _usage(
                "subscribe", f"`{blocks.escape_typed(args[1])}` is not a channel: pick one with `#`."
            )
        channel = match.group(1)
    service = args[0]
    with Session(deps.engine) as session:
        records = repo.list_slos(session=session)
        services = sorted({r.service for r in records})
        if service not in services:
            close = difflib.get_close_matches(service, services, n=3, cutoff=0.5)
            hint = f" Did you mean {', '.join(f'`{c}`' for c in close)}?" if close else ""
            return blocks.text_payload(
                f"No SLO belongs to a service called `{blocks.escape_typed(service)}`.{hint}"
            )
        # subscribing routes the service's alerts somewhere new: a responder's decision
        owners = [c for r in records if r.service == service for c in channels_of(session, r, deps)]
        denied = deps.responders.check(inv.user, owners)
        if denied:
            return blocks.text_payload(denied)
        added = slack_store.subscribe(
            session=session, service=service, channel=channel, by=inv.user, now=deps.clock()
        )
        session.commit()
    if not added:
        return blocks.text_payload(f"<#{channel}> already gets the alerts of `{service}`.")
    return blocks.text_payload(f"<#{channel}> now gets the alerts of `{service}`.")
