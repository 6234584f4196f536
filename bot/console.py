"""Console mode: each breach printed as its Slack message reads, its thread notes beneath it."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import TextIO

from sqlalchemy import event
from sqlmodel import Session

from bot import breaches
from bot.breaches import Change
from bot.episodes import breach_facts
from bot.jobs import Tick
from bot.messages import breach_message, render_text
from bot.notes import thread_note

# changes that change what the message says at a glance: it is printed again, whole
SHOWN = (breaches.OPENED, breaches.RAISED, breaches.LOWERED, breaches.RESOLVED)


@dataclass
class ConsoleHook:
    """A tick hook (see `bot.jobs.TickHook`) printing what Slack would show."""

    out: TextIO = field(default_factory=lambda: sys.stdout)
    seen: list[Change] = field(default_factory=list)

    def __call__(self, session: Session, tick: Tick) -> bool:
        lines: list[str] = []
        for change, breach in tick.changes:
            if change.event in SHOWN:
                facts = breach_facts(session, tick.slo, breach, tick.now)
                message = breach_message(tick.slo, facts, tick.assessment.status)
                lines.append(render_text(message))
            note = thread_note(session, tick, change, breach)
            if note:
                lines.append(f"  ↳ breach #{breach.id} of {tick.slo.name}: {note}")
            if change.event in SHOWN or note:
                lines.append("")
        changes = [change for change, _ in tick.changes]

        def show(_session: Session) -> None:
            # once the tick is stored: a crash before that loses the tick, and the next run announces
            # its breaches then, never twice (a rolled-back tick prints nothing)
            self.seen.extend(changes)
            if lines:
                print("\n".join(lines), file=self.out, flush=True)

        if changes:
            event.listen(session, "after_commit", show, once=True)
        return bool(tick.changes)
