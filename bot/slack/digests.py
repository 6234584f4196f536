"""Weekly digests per channel: each SLO routed to the channel with its week (SLI against the
objective, budget left and its change, the breaches that spent most, time to acknowledge), posted
once per due time by one replica of the fleet (`bot.store.digests.take`), through the outbox.

A channel's schedule is set with `/slo digest` or, for the channels an SLO routes to, its
`slo-bot/digest` annotation (a schedule set in Slack wins over the annotations).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session

from bot import review, review_render
from bot.annotations import DIGEST
from bot.catalogue.stored import slo_of
from bot.digest import Schedule, ScheduleError, last_due, next_due, parse_schedule
from bot.mrkdwn import escape
from bot.slack import blocks
from bot.slack.notify import channels_for
from bot.store import digests, repo
from bot.store import slack as slack_store
from bot.store.models import SLORecord

log = logging.getLogger(__name__)
MAX_SLOS = 40  # a message holds a few dozen SLO lines; `slo-bot report` lists them all
# (session, channel, the message, the chart's spec: `bot.slack.uploads`' digest payload, now)
Deliver = Callable[[Session, str, dict[str, Any], dict[str, Any], datetime], None]


def routed_to(
    session: Session, records: Sequence[SLORecord], default: str | None
) -> dict[str, list[SLORecord]]:
    """Each channel with the SLOs whose alerts go there (their own channels, their services'
    subscriptions, else the default channel)."""
    found: dict[str, list[SLORecord]] = {}
    subscriptions: dict[str, list[str]] = {}  # a grouped SLO's members share its service
    for record in records:
        try:
            slo = slo_of(record)
        except Exception:  # a definition that no longer builds is in no digest; `/slo status` says why
            continue
        subscribed = subscriptions.get(record.service)
        if subscribed is None:
            subscribed = slack_store.subscribed_channels(session=session, service=record.service)
            subscriptions[record.service] = subscribed
        for channel in channels_for(slo, subscribed, default):
            found.setdefault(channel, []).append(record)
    return found


def annotated(records: Sequence[SLORecord], default: str | None) -> dict[str, str]:
    """The schedules the SLOs' `slo-bot/digest` annotations give their own channels."""
    found: dict[str, str] = {}
    for record in records:
        try:
            slo = slo_of(record)
            text = slo.annotations.get(DIGEST, "").strip()
            if not text:
                continue
            schedule = parse_schedule(text).text()
        except Exception:  # validate refuses a bad one; a stored one that no longer builds is skipped
            continue
        for channel in channels_for(slo, (), default):
            found.setdefault(channel, schedule)
    return found


def _sync_annotations(
    session: Session, records: Sequence[SLORecord], default: str | None, now: datetime
) -> None:
    wanted = annotated(records, default)
    existing = {d.channel: d for d in digests.all_digests(session=session)}
    for channel, schedule in wanted.items():
        current = existing.get(channel)
        if current is None:
            digests.set_schedule(
                session=session,
                channel=channel,
                schedule=schedule,
                origin=digests.CATALOGUE,
                by=None,
                now=now,
            )
        elif current.origin == digests.CATALOGUE and current.schedule != schedule:
            current.schedule = schedule  # its last digest stays sent
            session.add(current)
    for channel, current in existing.items():
        if current.origin == digests.CATALOGUE and channel not in wanted:
            session.delete(current)


def send_due(engine: Engine, now: datetime, holder: str, default: str | None, deliver: Deliver) -> list[str]:
    """Send every digest due by `now` that no replica sent yet; the channels sent to."""
    sent: list[str] = []
    records: list[SLORecord] | None = None
    with Session(engine) as session:
        # (a grouped SLO's members route and annotate as their definition: every replica looks
        # after every tick, so it reads the definitions only, and the members when a digest is due)
        _sync_annotations(session, repo.list_slos(session=session), default, now)
        session.commit()
        for record in digests.all_digests(session=session):
            try:
                schedule = parse_schedule(record.schedule)
            except ScheduleError:
                log.warning("the digest of %s has an unreadable schedule %r", record.channel, record.schedule)
                continue
            due = last_due(schedule, now)
            if record.last_due_at is not None and due <= (repo.utc(record.last_due_at) or due):
                continue
            channel = record.channel
            if not digests.take(session=session, channel=channel, due_at=due, holder=holder):
                session.rollback()  # another replica sends it
                continue
            if records is None:
                # a composite's parts raise no alert and are no SLOs of a channel: it stands for them
                records = repo.without_parts(repo.list_slos(session=session, members=True))
            slos = routed_to(session, records, default).get(channel, [])
            message, chart = payload(session, channel, schedule, due, slos, now)
            deliver(session, channel, message, chart, now)
            session.commit()
            sent.append(channel)
    return sent


def payload(
    session: Session,
    channel: str,
    schedule: Schedule,
    due: datetime,
    slos: Sequence[SLORecord],
    now: datetime,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The digest message (the week's review of the channel's SLOs, the least budget left first)
    and its chart's spec (those SLOs' ids in that order, the week)."""
    week = review.build(session, period="7d", now=now)
    names = {r.name for r in slos}
    mine = sorted(
        (s for s in week.slos if s.slo in names),
        key=lambda s: (s.budget_remaining is None, s.budget_remaining or 0.0),
    )
    title = f"*Weekly SLO digest* ({escape(schedule.text())})"
    span = f"{blocks.slack_time(week.start)} to {blocks.slack_time(week.end)}"
    lines = review_render.slack_lines(replace(week, slos=tuple(mine[:MAX_SLOS])), blocks.slack_time, escape)
    if len(mine) > MAX_SLOS:
        lines.append(f"… and {len(mine) - MAX_SLOS} more: `/slo report` or `slo-bot report` lists them all.")
    if not mine:
        lines = ["No SLO sends its alerts to this channel."]
    lines += _excluded(session, [r for r in slos if r.name in {s.slo for s in mine}], week.start, week.end)
    if due < now and (now - due).total_seconds() > 3600:
        lines.append(f"_(due {blocks.slack_time(due)}: slo-bot was not running then)_")
    ids = {r.name: r.id for r in slos}
    chart = {
        "digest": [ids[s.slo] for s in mine if ids.get(s.slo) is not None],
        "title": f"Budget left this week: {len(mine)} SLO(s)",
        "start": week.start.isoformat(),
        "end": week.end.isoformat(),
    }
    return blocks.text_payload("\n".join([title, span, *lines])), chart


USAGE = "/slo digest [#channel] WEEKDAY HH:MM [TIME_ZONE] | /slo digest list | /slo digest off [#channel]"


def answer(
    deps: Any, user: str, here: str, args: Sequence[str], channel_of: Callable[[str], str | None]
) -> dict[str, Any]:
    """`/slo digest`: set, list or stop a channel's weekly digest (members of the channel only)."""
    words = list(args)
    if not words:
        return blocks.text_payload(f"When should the digest come?\nUsage: `{USAGE}`")
    if words[0].lower() == "list":
        return _list(deps)
    stop = words[0].lower() == "off"
    if stop:
        words.pop(0)
    channel = here
    if words and words[0].startswith("<#"):
        found = channel_of(words.pop(0))
        if found is None:
            return blocks.text_payload(f"That is not a channel: pick one with `#`.\nUsage: `{USAGE}`")
        channel = found
    denied = deps.responders.check(user, [channel])
    if denied:
        return blocks.text_payload(denied)
    now = deps.clock()
    with Session(deps.engine) as session:
        if stop:
            if words:
                return blocks.text_payload(f"`off` takes a channel at most.\nUsage: `{USAGE}`")
            removed = digests.remove(session=session, channel=channel)
            session.commit()
            return blocks.text_payload(
                f"<#{channel}> gets no weekly digest any more."
                if removed
                else f"<#{channel}> had no weekly digest."
            )
        try:
            schedule = parse_schedule(" ".join(words))
        except ScheduleError as err:
            return blocks.text_payload(f"{escape(str(err))}\nUsage: `{USAGE}`")
        digests.set_schedule(
            session=session, channel=channel, schedule=schedule.text(), origin=digests.SLACK, by=user, now=now
        )
        session.commit()
    first = next_due(schedule, now)
    return blocks.text_payload(
        f"<#{channel}> gets a weekly digest every {escape(schedule.text())}; the first on "
        f"{blocks.slack_time(first)}."
    )


def _list(deps: Any) -> dict[str, Any]:
    with Session(deps.engine) as session:
        found = digests.all_digests(session=session)
    if not found:
        return blocks.text_payload(f"No channel gets a weekly digest yet.\nUsage: `{USAGE}`")
    now = deps.clock()
    lines = ["*Weekly digests*"]
    for d in found:
        how = f"set by <@{d.set_by}>" if d.origin == digests.SLACK and d.set_by else "from the catalogue"
        try:
            when = f"next {blocks.slack_time(next_due(parse_schedule(d.schedule), now))}"
        except ScheduleError:
            when = "unreadable schedule"
        lines.append(f"• <#{d.channel}>: {escape(d.schedule)} ({how}; {when})")
    return blocks.text_payload("\n".join(lines))


def queue(
    session: Session, channel: str, message: dict[str, Any], chart: dict[str, Any], now: datetime
) -> None:
    """Slack: the digest and then its chart go through the outbox (retried, posted once, in order)."""
    from bot.slack.uploads import CHART
    from bot.store import outbox

    outbox.enqueue(session=session, kind="channel_post", channel=channel, payload=message, now=now)
    if chart["digest"]:
        outbox.enqueue(session=session, kind=CHART, channel=channel, payload=chart, now=now)


def printer(out: Any, chart_dir: Path | None = None) -> Deliver:
    """The terminal (console mode): the digest printed as Slack would show its text, and its chart
    written under `chart_dir` (its path printed)."""

    def deliver(
        session: Session, channel: str, message: dict[str, Any], chart: dict[str, Any], now: datetime
    ) -> None:
        print(f"Weekly digest for {channel}:\n{message['text']}\n", file=out, flush=True)
        if chart_dir is None or not chart["digest"]:
            return
        from bot.slack.uploads import draw_week

        drawn = draw_week(session, chart)
        chart_dir.mkdir(parents=True, exist_ok=True)
        path = chart_dir / f"digest-{channel.lstrip('#')}-{now:%Y%m%d-%H%M}.png"
        path.write_bytes(drawn.png)
        print(f"  chart: {path}\n", file=out, flush=True)

    return deliver


def _excluded(session: Session, records: Sequence[SLORecord], start: datetime, end: datetime) -> list[str]:
    """The week's maintenance windows and refunded breaches of the SLOs: what their numbers leave out."""
    from bot.adjustments import occurrences
    from bot.store import adjustments as adjustment_store

    exclusions = adjustment_store.load_exclusions(session=session)
    lines = []
    for record in records:
        try:
            slo = slo_of(record)
        except Exception:  # a definition that no longer builds: its line already says it fails
            continue
        name = escape(record.name)
        for adjustment in exclusions.adjustments:
            if adjustment.applies_to(slo):
                for a, b in occurrences(adjustment, start, end):
                    lines.append(
                        f"🛠 `{name}`: maintenance {escape(adjustment.name)}, {blocks.slack_time(a)} to "
                        f"{blocks.slack_time(b)} (left out of its numbers)"
                    )
        for a, b in exclusions.refunds.get(record.name, ()):
            if a < end and b > start:
                lines.append(
                    f"↩️ `{name}`: refunded, {blocks.slack_time(a)} to {blocks.slack_time(b)} "
                    "(a false alarm: left out of its numbers)"
                )
    return lines
