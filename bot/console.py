"""Console mode: each breach printed as its Slack message reads, its thread notes beneath it."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import TextIO

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
        for change, breach in tick.changes:
            self.seen.append(change)
            if change.event in SHOWN:
                facts = breach_facts(session, tick.slo, breach, tick.now)
                message = breach_message(tick.slo, facts, tick.assessment.status)
                print(render_text(message), file=self.out, flush=True)
            note = thread_note(session, tick, change, breach)
            if note:
                print(f"  ↳ breach #{breach.id} of {tick.slo.name}: {note}", file=self.out, flush=True)
            if change.event in SHOWN or note:
                print(file=self.out, flush=True)
        return bool(tick.changes)
