"""What alert changes mean for Slack: which channels, which messages to queue, who did what.

Everything here runs inside the caller's transaction and only writes the outbox; the delivery
worker talks to Slack. So a transition and its messages are committed together or not at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlmodel import Session

from bot.alerting import FIRING, Transition
from bot.domain import SLO
from bot.durations import format_duration
from bot.status import Assessment
from bot.store import alerts as alert_store
from bot.store import slack as slack_store
from bot.store.models import AlertRecord, SLORecord
from bot.store.repo import utc

# Re-evaluations of a firing, unacknowledged alert go in its thread at most this often.
NOTE_INTERVAL = timedelta(minutes=30)


def channels_for(slo: SLO, subscribed: Sequence[str], default: str | None) -> list[str]:
    """The SLO's `slo-bot/channel`, its slack notification targets, service subscriptions; else
    the default channel. Each channel once, in that order."""
    found: list[str] = []
    for text in [slo.annotations.get("slo-bot/channel", "")] + [
        t.annotations.get("slo-bot/channel", "")
        for p in slo.alert_policies
        for t in p.targets
        if t.target.lower() == "slack"
    ]:
        found += [c.strip() for c in text.split(",") if c.strip()]
    found += list(subscribed)
    if not found and default:
        found.append(default)
    return list(dict.fromkeys(found))


def queue_alert_message(session: Session, alert: AlertRecord, channels: Sequence[str], now: datetime) -> None:
    """Post (first time) or update (afterwards) the alert's message in each channel."""
    for channel in channels:
        slack_store.enqueue(
            session=session, kind="alert_message", alert_id=alert.id, channel=channel, now=now
        )


def queue_note(session: Session, alert: AlertRecord, text: str, now: datetime) -> None:
    """A line in the alert's thread, in every channel its message went to."""
    for message in slack_store.messages_of(session=session, alert_id=alert.id or 0):
        slack_store.enqueue(
            session=session,
            kind="thread_note",
            alert_id=alert.id,
            channel=message.channel,
            payload={"text": text},
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
    ) -> bool:
        """Queue messages; True when something was queued."""
        assert record.id is not None
        open_alerts = alert_store.open_alerts(session=session, slo_id=record.id)
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
                channels = [
                    m.channel for m in slack_store.messages_of(session=session, alert_id=alert.id or 0)
                ]
            queue_alert_message(session, alert, channels, now)
            queued = queued or bool(channels)
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


def set_acknowledged(session: Session, alert: AlertRecord, user: str, now: datetime, on: bool) -> bool:
    """Acknowledge (or take it back); False when nothing changes (a double click, a retry)."""
    if on == bool(alert.acknowledged_by):
        return False
    alert.acknowledged_by = user if on else None
    alert.acknowledged_at = now if on else None
    session.add(alert)
    record_action(session, alert, "acknowledged" if on else "unacknowledged", user, now)
    channels = [m.channel for m in slack_store.messages_of(session=session, alert_id=alert.id or 0)]
    queue_alert_message(session, alert, channels, now)
    verb = "acknowledged" if on else "took back the acknowledgement of"
    queue_note(session, alert, f"<@{user}> {verb} this alert.", now)
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
        channels = [m.channel for m in slack_store.messages_of(session=session, alert_id=alert.id or 0)]
        queue_alert_message(session, alert, channels, now)


def unsilence_slo(session: Session, record: SLORecord, user: str, now: datetime) -> bool:
    assert record.id is not None
    ended = slack_store.unsilence(session=session, slo_id=record.id, by=user, now=now)
    for alert in alert_store.open_alerts(session=session, slo_id=record.id).values():
        record_action(session, alert, "unsilenced", user, now)
        channels = [m.channel for m in slack_store.messages_of(session=session, alert_id=alert.id or 0)]
        queue_alert_message(session, alert, channels, now)
    return ended > 0
