"""Console mode: each breach printed as its Slack message reads, its thread notes beneath it."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from datetime import datetime
from typing import TextIO

from sqlalchemy import event
from sqlmodel import Session

from bot import breaches
from bot.breaches import Change
from bot.conversation import Conversation
from bot.episodes import breach_facts
from bot.jobs import Tick
from bot.messages import breach_message, render_text
from bot.notes import thread_note
from bot.store.models import BreachRecord, SLORecord

# changes that change what the message says at a glance: it is printed again, whole
SHOWN = (breaches.OPENED, breaches.RAISED, breaches.LOWERED, breaches.RESOLVED)


@dataclass
class ConsoleDestination:
    """The terminal as the place breaches are shown (console mode, `slo-bot demo`; see
    `bot.conversation`): what Slack would show, printed once the transaction that decided it is stored."""

    name = "console"
    out: TextIO = field(default_factory=lambda: sys.stdout)
    seen: list[Change] = field(default_factory=list)

    def acknowledged(
        self, session: Session, breach: BreachRecord, on: bool, actor: str, now: datetime, origin: str | None
    ) -> None:
        return None  # said by `note`

    def note(self, session: Session, breach: BreachRecord, text: str, now: datetime, by: str | None) -> None:
        record = session.get(SLORecord, breach.slo_id)
        name = record.name if record is not None else "?"
        self._print(session, [f"  ↳ breach #{breach.id} of {name}: {text}", ""], [])

    def changed(self, session: Session, breach: BreachRecord, now: datetime) -> None:
        return None  # the terminal shows each state once, when it happens

    def lines(self, session: Session, breach: BreachRecord) -> list[str]:
        return []

    def tick(self, session: Session, tick: Tick, conversation: Conversation) -> bool:
        lines: list[str] = []
        for change, breach in tick.changes:
            if change.event in SHOWN:
                status = tick.assessment.status
                facts = breach_facts(session, tick.slo, breach, tick.now, status=status)
                message = breach_message(tick.slo, facts, status)
                lines.append(render_text(message))
            note = thread_note(session, tick, change, breach)
            if note:
                lines.append(f"  ↳ breach #{breach.id} of {tick.slo.name}: {note}")
            if change.event in SHOWN or note:
                lines.append("")
        self._print(session, lines, [change for change, _ in tick.changes])
        return bool(tick.changes)

    def _print(self, session: Session, lines: list[str], changes: list[Change]) -> None:
        """Print once the transaction is stored: a crash before that loses the tick, and the next run
        announces its breaches then, never twice (a rolled-back transaction prints nothing)."""

        def show(_session: Session) -> None:
            self.seen.extend(changes)
            if lines:
                print("\n".join(lines), file=self.out, flush=True)

        if lines or changes:
            event.listen(session, "after_commit", show, once=True)
