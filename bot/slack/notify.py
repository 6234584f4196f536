"""What alert changes mean for Slack: which channels, which messages to queue, who did what.

Everything here runs inside the caller's transaction and only writes the outbox; the delivery
worker talks to Slack. So a transition and its messages are committed together or not at all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlmodel import Session, col, or_, select

from bot import episodes
from bot.alerting import FIRING, Transition
from bot.annotations import CHANNEL, parse_channels
from bot.domain import SLO
from bot.durations import format_duration
from bot.incidents.base import ACKNOWLEDGE, UNACKNOWLEDGE
from bot.status import Assessment
from bot.store import alerts as alert_store
from bot.store import incidents as incident_store
from bot.store import outbox
from bot.store import slack as slack_store
from bot.store.models import AlertRecord, OutboxRecord, SLORecord
from bot.store.repo import utc

# Re-evaluations of a firing, unacknowledged alert go in its thread at most this often.
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


def alert_channels(session: Session, alert: AlertRecord, *, posted_ids: bool = False) -> list[str]:
    """Every channel the alert went to: its messages, and its posts still waiting in the outbox (a
    Slack outage must not make a later change skip a channel). `posted_ids`: the channel IDs
    Slack answered with where known, for the calls that take no `#name`."""
    found = [
        (m.posted_channel or m.channel) if posted_ids else m.channel
        for m in slack_store.messages_of(session=session, alert_id=alert.id or 0)
    ]
    queued = session.exec(
        select(OutboxRecord.channel).where(
            OutboxRecord.alert_id == alert.id,
            OutboxRecord.kind == "alert_message",
            OutboxRecord.status == "pending",
        )
    )
    found += [c for c in queued if c]
    return list(dict.fromkeys(found))


def queue_alert_message(session: Session, alert: AlertRecord, channels: Sequence[str], now: datetime) -> None:
    """Post (first time) or update (afterwards) the alert's message in each channel."""
    for channel in channels:
        outbox.enqueue(session=session, kind="alert_message", alert_id=alert.id, channel=channel, now=now)


def queue_note(session: Session, alert: AlertRecord, text: str, now: datetime, by: str | None = None) -> None:
    """A line in the alert's thread, in every channel its message went to. `by`: the person whose
    action it reports (those go out even while the SLO is silenced; slo-bot's own notes do not)."""
    payload = {"text": text} if by is None else {"text": text, "by": by}
    for channel in alert_channels(session, alert):
        outbox.enqueue(
            session=session,
            kind="thread_note",
            alert_id=alert.id,
            channel=channel,
            payload=payload,
            now=now,
        )


class SlackHook:
    """Called by each evaluation, inside its transaction (see `bot.jobs.evaluate_all`)."""

    def __init__(self, default_channel: str | None) -> None:
        self.default_channel = default_channel

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
        """Queue messages; True when something was queued."""
        assert record.id is not None
        queued = False
        changed = {t.key for t in transitions}
        for transition in transitions:
            alert = open_alerts.get(transition.key) or alert_store.latest(
                session=session, slo_id=record.id, key=transition.key
            )
            if alert is None:
                continue
            subscribed = slack_store.subscribed_channels(session=session, service=record.service)
            if transition.event == FIRING:
                channels = channels_for(slo, subscribed, self.default_channel)
            else:
                channels = alert_channels(session, alert)
            queue_alert_message(session, alert, channels, now)
            queued = queued or bool(channels)
            if transition.event != FIRING and alert.fired_at is not None:
                episode = episodes.episode_of(session, slo, alert, now)  # measured by the evaluation
                impact = episodes.impact_text(episode, slo.window.spec)
                queue_note(session, alert, f"Budget impact: this episode {impact}.", now)
        for key, alert in open_alerts.items():
            if key in changed or alert.state != FIRING or alert.acknowledged_by:
                continue
            last = utc(alert.noted_at) or utc(alert.fired_at)
            if last is not None and now - last >= NOTE_INTERVAL:
                burns = ", ".join(
                    f"{'-' if b is None else f'{b:.1f}x'} over {format_duration(w)}"
                    for w, b in assessment.status.burn_rates.items()
                )
                remaining = assessment.status.remaining_ratio
                left = "no data" if remaining is None else f"{remaining * 100:.1f} %"
                queue_note(session, alert, f"Still firing: burn {burns}; budget left {left}.", now)
                alert.noted_at = now
                session.add(alert)
                queued = True
        return queued


def record_action(
    session: Session, alert: AlertRecord, event: str, user: str, now: datetime, detail: str = ""
) -> None:
    """The audit trail: who did what to which alert, and when."""
    assert alert.id is not None
    alert_store.add_event(session=session, alert_id=alert.id, at=now, event=event, actor=user, detail=detail)


def set_acknowledged(
    session: Session,
    alert: AlertRecord,
    user: str,
    now: datetime,
    on: bool,
    *,
    actor: str | None = None,
    note: str | None = None,
    origin: str | None = None,
) -> bool:
    """Acknowledge (or take it back); False when nothing changes (a double click, a retry).

    `user` is a Slack user ID, or a person named by an incident tool (then `origin` is that tool's
    target, which is not told back, and `note` says it in the thread). The incident tools the alert
    is open in follow; `actor` is how they name the person."""
    if on == bool(alert.acknowledged_by):
        return False
    alert.acknowledged_by = user if on else None
    alert.acknowledged_at = now if on else None
    session.add(alert)
    record_action(session, alert, "acknowledged" if on else "unacknowledged", user, now)
    queue_alert_message(session, alert, alert_channels(session, alert), now)
    if note is None:
        verb = "acknowledged" if on else "took back the acknowledgement of"
        note = f"<@{user}> {verb} this alert."
    queue_note(session, alert, note, now, by=user)
    incident_store.queue_upstream(
        session,
        alert,
        ACKNOWLEDGE if on else UNACKNOWLEDGE,
        now,
        actor=actor or f"{user} (Slack)",
        exclude=origin,
    )
    return True


def silence_slo(
    session: Session, record: SLORecord, until: datetime, reason: str, user: str, now: datetime
) -> None:
    assert record.id is not None
    slack_store.unsilence(session=session, slo_id=record.id, by=user, now=now)
    slack_store.silence(session=session, slo_id=record.id, until=until, reason=reason, by=user, now=now)
    for alert in alert_store.open_alerts(session=session, slo_id=record.id).values():
        record_action(
            session, alert, "silenced", user, now, detail=f"until {until.isoformat()} {reason}".strip()
        )
        queue_alert_message(session, alert, alert_channels(session, alert), now)


def unsilence_slo(session: Session, record: SLORecord, user: str, now: datetime) -> bool:
    assert record.id is not None
    ended = slack_store.unsilence(session=session, slo_id=record.id, by=user, now=now)
    open_alerts = list(alert_store.open_alerts(session=session, slo_id=record.id).values())
    for alert in open_alerts:
        record_action(session, alert, "unsilenced", user, now)
        queue_alert_message(session, alert, alert_channels(session, alert), now)
    # posts held back until the silence's end go out now, not when it would have ended
    session.execute(
        update(OutboxRecord)
        .where(
            col(OutboxRecord.alert_id).in_([a.id for a in open_alerts]),
            col(OutboxRecord.status) == "pending",
            col(OutboxRecord.next_attempt_at) > now,
            # held back by the silence (see `delivery.Defer`), not waiting out a Slack error
            or_(col(OutboxRecord.attempts) == 0, col(OutboxRecord.last_error).like("% is silenced")),
        )
        .values(next_attempt_at=now)
    )
    return ended > 0


def queue_unannounced(session: Session, default_channel: str | None, now: datetime) -> int:
    """At start in a Slack mode: queue the message of every firing alert that never got one (opened
    by a `check` or a `run` without Slack credentials). Returns how many alerts were queued."""
    from bot.jobs import slo_of  # the catalogue loads only when this runs

    queued = 0
    for record, alert in alert_store.firing_alerts(session=session):
        if alert_channels(session, alert):
            continue  # posted, or on its way
        try:
            slo = slo_of(record)
        except Exception:  # a definition that no longer builds is logged by the evaluations
            continue
        subscribed = slack_store.subscribed_channels(session=session, service=record.service)
        channels = channels_for(slo, subscribed, default_channel)
        queue_alert_message(session, alert, channels, now)
        queued += bool(channels)
    return queued
