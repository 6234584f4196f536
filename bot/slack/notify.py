"""What breach changes mean for Slack: which channels, which messages to queue, who did what.

Everything here runs inside the caller's transaction and only writes the outbox; the delivery
worker talks to Slack. So a change and its messages are committed together or not at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlmodel import Session, col, or_, select

from bot import breaches
from bot.annotations import CHANNEL, parse_channels
from bot.burndown import has_chart
from bot.catalogue.stored import slo_of
from bot.conversation import Conversation
from bot.domain import SLO
from bot.durations import format_duration
from bot.jobs import Tick
from bot.messages import percent
from bot.notes import thread_note
from bot.slack.blocks import slack_time
from bot.slack.uploads import queue_chart
from bot.store import breaches as breach_store
from bot.store import outbox, repo
from bot.store import slack as slack_store
from bot.store.models import BreachRecord, OutboxRecord, SLORecord
from bot.store.repo import utc

# Re-evaluations of an open, unacknowledged breach go in its thread at most this often.
NOTE_INTERVAL = timedelta(minutes=30)


def channels_for(slo: SLO, subscribed: Sequence[str], default: str | None) -> list[str]:
    """The SLO's `slo-bot/channel`, its slack notification targets, service subscriptions; else
    the default channel. Each channel once, in that order."""
    found: list[str] = []
    for text in [slo.annotations.get(CHANNEL, "")] + [
        t.annotations.get(CHANNEL, "")
        for p in slo.alert_policies
        for t in p.targets
        if t.target.lower() == "slack"
    ]:
        found += parse_channels(text)  # the catalogue refuses what this refuses
    found += list(subscribed)
    if not found and default:
        found.append(default)
    return list(dict.fromkeys(found))


def breach_channels(session: Session, breach: BreachRecord) -> list[str]:
    """Every channel the breach went to: its messages, and its posts still waiting in the outbox (a
    Slack outage must not make a later change skip a channel)."""
    session.flush()  # a post queued earlier in this transaction counts (evaluations never autoflush)
    found = [m.channel for m in slack_store.messages_of(session=session, breach_id=breach.id or 0)]
    queued = session.exec(
        select(OutboxRecord.channel).where(
            OutboxRecord.breach_id == breach.id,
            OutboxRecord.kind == "alert_message",
            OutboxRecord.status == "pending",
        )
    )
    found += [c for c in queued if c]
    return list(dict.fromkeys(found))


def queue_message(session: Session, breach: BreachRecord, channels: Sequence[str], now: datetime) -> None:
    """Post (first time) or update (afterwards) the breach's message in each channel.

    Once per channel and transaction: the entry is rendered when it is delivered, after the commit,
    so it shows everything the transaction changed (a breach opened with a budget notice in the same
    evaluation is one post, not a post and an identical update)."""
    queued = _queued_in(session)
    for channel in channels:
        if (breach.id, channel) in queued:
            continue
        queued.add((breach.id, channel))
        outbox.enqueue(session=session, kind="alert_message", breach_id=breach.id, channel=channel, now=now)


def _queued_in(session: Session) -> set[tuple[int | None, str]]:
    """The (breach, channel) messages queued in the session's open transaction."""
    return repo.per_transaction(session, "messages_queued", set)


def queue_update(session: Session, breach: BreachRecord, now: datetime) -> None:
    """Update the breach's message wherever it went."""
    queue_message(session, breach, breach_channels(session, breach), now)


def queue_note(
    session: Session,
    breach: BreachRecord,
    text: str,
    now: datetime,
    by: str | None = None,
    channels: Sequence[str] | None = None,
) -> None:
    """A line in the breach's thread, in every channel its message went to (`channels`, when the
    caller has just read them). `by`: the person whose action it reports (those go out even while
    the SLO is silenced; slo-bot's own notes do not)."""
    payload = {"text": text} if by is None else {"text": text, "by": by}
    for channel in breach_channels(session, breach) if channels is None else channels:
        outbox.enqueue(
            session=session,
            kind="thread_note",
            breach_id=breach.id,
            channel=channel,
            payload=payload,
            now=now,
        )


class SlackDestination:
    """Slack as a place breaches are shown (see `bot.conversation`): one message per breach and
    channel, updated in place, and its thread."""

    name = "slack"

    def __init__(self, default_channel: str | None) -> None:
        self.default_channel = default_channel

    def acknowledged(
        self, session: Session, breach: BreachRecord, on: bool, actor: str, now: datetime, origin: str | None
    ) -> None:
        return None  # the message is updated (`changed`) and the thread told (`note`) for every destination

    def note(self, session: Session, breach: BreachRecord, text: str, now: datetime, by: str | None) -> None:
        queue_note(session, breach, text, now, by=by)

    def changed(self, session: Session, breach: BreachRecord, now: datetime) -> None:
        queue_update(session, breach, now)

    def lines(self, session: Session, breach: BreachRecord) -> list[str]:
        return []

    def tick(self, session: Session, tick: Tick, conversation: Conversation) -> bool:
        """Queue messages and notes; True when something was queued."""
        record, slo, now = tick.record, tick.slo, tick.now
        assert record.id is not None
        queued = False
        changed: set[int] = set()
        for change, breach in tick.changes:
            changed.add(breach.id or 0)
            if change.event == breaches.OPENED:
                subscribed = slack_store.subscribed_channels(session=session, service=record.service)
                channels = channels_for(slo, subscribed, self.default_channel)
                queue_message(session, breach, channels, now)
                if has_chart(slo):
                    _queue_charts(session, breach, channels, now)
                queued = queued or bool(channels)
                continue
            # (read once for the update, the note and the chart: each read flushes and asks twice)
            went_to = breach_channels(session, breach)
            queue_message(session, breach, went_to, now)
            text = thread_note(session, tick, change, breach, slack_time)
            if text:
                queue_note(session, breach, text, now, channels=went_to)
            if change.event == breaches.RESOLVED and has_chart(slo):
                _queue_charts(session, breach, went_to, now)
            queued = True
        for breach in tick.open:
            if breach.id in changed or breach.kind != breaches.BURN or breach.acknowledged_by:
                continue
            last = utc(breach.noted_at) or utc(breach.opened_at)
            if last is not None and now - last >= NOTE_INTERVAL:
                status = tick.assessment.status
                burns = ", ".join(
                    f"{'-' if b is None else f'{b:.1f}x'} over {format_duration(w)}"
                    for w, b in status.burn_rates.items()
                )
                left = "no data" if status.remaining_ratio is None else percent(status.remaining_ratio)
                queue_note(session, breach, f"Still firing: burn {burns}; budget left {left}.", now)
                breach.noted_at = now
                session.add(breach)
                queued = True
        return queued


def _queue_charts(session: Session, breach: BreachRecord, channels: Sequence[str], now: datetime) -> None:
    """The SLO's burn-down chart in the breach's thread, in each of its channels: when it opens
    (after its message) and when it ends."""
    for channel in channels:
        queue_chart(session, slo_id=breach.slo_id, channel=channel, now=now, breach_id=breach.id)


def record_action(
    session: Session, breach: BreachRecord, event: str, user: str, now: datetime, detail: str = ""
) -> None:
    """The audit trail: who did what to which breach, and when."""
    assert breach.id is not None
    breach_store.add_event(
        session=session, breach_id=breach.id, at=now, event=event, actor=user, detail=detail
    )


def silence_slo(
    session: Session, record: SLORecord, until: datetime, reason: str, user: str, now: datetime
) -> None:
    """Hold back every breach of the SLO (open ones and new ones) until `until`."""
    assert record.id is not None
    slack_store.unsilence(session=session, slo_id=record.id, by=user, now=now)
    slack_store.silence(session=session, slo_id=record.id, until=until, reason=reason, by=user, now=now)
    for breach in breach_store.open_breaches(session=session, slo_id=record.id):
        record_action(
            session, breach, "silenced", user, now, detail=f"until {until.isoformat()} {reason}".strip()
        )
        queue_update(session, breach, now)


def unsilence_slo(session: Session, record: SLORecord, user: str, now: datetime) -> bool:
    assert record.id is not None
    ended = slack_store.unsilence(session=session, slo_id=record.id, by=user, now=now)
    open_now = breach_store.open_breaches(session=session, slo_id=record.id)
    for breach in open_now:
        record_action(session, breach, "unsilenced", user, now)
        queue_update(session, breach, now)
    # posts held back until the silence's end go out now, not when it would have ended
    session.execute(
        update(OutboxRecord)
        .where(
            col(OutboxRecord.breach_id).in_([b.id for b in open_now]),
            col(OutboxRecord.status) == "pending",
            col(OutboxRecord.next_attempt_at) > now,
            # held back by the silence (see `delivery.Defer`), not waiting out a Slack error
            or_(col(OutboxRecord.attempts) == 0, col(OutboxRecord.last_error).like("% is silenced")),
        )
        .values(next_attempt_at=now)
    )
    return ended > 0


def queue_unannounced(session: Session, default_channel: str | None, now: datetime) -> int:
    """At start in a Slack mode: queue the message of every open breach that never got one (opened
    by a `check` or a `run` without Slack credentials). Returns how many breaches were queued."""
    queued = 0
    for record, breach in breach_store.firing_breaches(session=session):
        if breach_channels(session, breach):
            continue  # posted, or on its way
        try:
            slo = slo_of(record)
        except Exception:  # a definition that no longer builds is logged by the evaluations
            continue
        subscribed = slack_store.subscribed_channels(session=session, service=record.service)
        channels = channels_for(slo, subscribed, default_channel)
        queue_message(session, breach, channels, now)
        queued += bool(channels)
    return queued
