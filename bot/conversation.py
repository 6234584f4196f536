"""A breach's one conversation, wherever it is shown: Slack (or the terminal) and the incident tools.

Each place is a `Destination`. They meet here and in the breach store only: Slack's code knows nothing
of the incident tools, nor theirs of Slack. What one of them hears (a person acknowledging in Slack, an
acknowledgement or a note arriving from PagerDuty, an incident tool refusing a call) goes to the others
through the `Conversation`; a new destination (Teams, email) is one module and one line where the
composition root (`bot.service`) lists them.

Every method runs inside the caller's transaction and only writes the store and the outbox.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlmodel import Session

from bot.jobs import Tick
from bot.maintenance_notes import window_notes
from bot.store import breaches as breach_store
from bot.store.models import BreachRecord


class Destination(Protocol):
    name: str  # "slack", "incidents", "console"

    def tick(self, session: Session, tick: Tick, conversation: Conversation) -> bool:
        """An evaluation moved the SLO's breaches; True when something was queued."""
        ...

    def acknowledged(
        self, session: Session, breach: BreachRecord, on: bool, actor: str, now: datetime, origin: str | None
    ) -> None:
        """Someone acknowledged the breach (or took it back); `origin`: the incident target it came
        from, which is not told back."""
        ...

    def note(self, session: Session, breach: BreachRecord, text: str, now: datetime, by: str | None) -> None:
        """Something to say in the breach's conversation (mrkdwn). `by`: the person whose action it
        reports; None for slo-bot's own words."""
        ...

    def changed(self, session: Session, breach: BreachRecord, now: datetime) -> None:
        """The breach, or its state somewhere, changed: show it again."""
        ...

    def lines(self, session: Session, breach: BreachRecord) -> list[str]:
        """What this destination adds to the breach's message (an incident's state in each tool)."""
        ...


@dataclass(frozen=True)
class Conversation:
    """Every destination of this process, in the order the composition root lists them. A tick hook
    (`bot.jobs.TickHook`) too: each evaluation reaches each destination."""

    destinations: Sequence[Destination]

    def __call__(self, session: Session, tick: Tick) -> bool:
        queued = False
        for destination in self.destinations:
            queued = destination.tick(session, tick, self) or queued
        for breach, text in window_notes(session, tick):  # a maintenance window began meanwhile
            self.note(session, breach, text, tick.now)
            queued = True
        return queued

    def note(
        self,
        session: Session,
        breach: BreachRecord,
        text: str,
        now: datetime,
        by: str | None = None,
        *,
        source: str | None = None,
    ) -> None:
        """Say `text` about the breach everywhere but `source` (the destination saying it)."""
        for destination in self.destinations:
            if destination.name != source:
                destination.note(session, breach, text, now, by)

    def changed(
        self, session: Session, breach: BreachRecord, now: datetime, *, source: str | None = None
    ) -> None:
        for destination in self.destinations:
            if destination.name != source:
                destination.changed(session, breach, now)

    def lines(self, session: Session, breach: BreachRecord) -> list[str]:
        return [line for d in self.destinations for line in d.lines(session, breach)]

    def acknowledge(
        self,
        session: Session,
        breach: BreachRecord,
        user: str,
        now: datetime,
        on: bool,
        *,
        actor: str | None = None,
        note: str | None = None,
        origin: str | None = None,
    ) -> bool:
        """Acknowledge the breach: every signal of it, its incident in every tool, its escalation (or
        take it back). False when nothing changes (a double click, a retry).

        `user` is a Slack user ID, or a person named by an incident tool (then `origin` is that tool's
        target, which is not told back, and `note` says it). `actor` is how the tools name the person."""
        if on == bool(breach.acknowledged_by):
            return False
        breach.acknowledged_by = user if on else None
        breach.acknowledged_at = now if on else None
        session.add(breach)
        assert breach.id is not None
        event = "acknowledged" if on else "unacknowledged"
        breach_store.add_event(session=session, breach_id=breach.id, at=now, event=event, actor=user)
        if note is None:
            verb = "acknowledged" if on else "took back the acknowledgement of"
            note = f"<@{user}> {verb} this breach."
        for destination in self.destinations:
            destination.acknowledged(session, breach, on, actor or f"{user} (Slack)", now, origin)
        self.changed(session, breach, now)
        self.note(session, breach, note, now, by=user)
        return True
