"""Console mode: each breach printed as its Slack message reads, its thread notes beneath it, and
the burn-down charts Slack would get written as PNG files (their paths printed)."""

from __future__ import annotations

import re
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TextIO

from sqlalchemy import Engine, event
from sqlmodel import Session

from bot import breaches
from bot.breaches import Change
from bot.burndown import BurnDown, has_chart, load_burn_down
from bot.conversation import Conversation
from bot.domain import SLO
from bot.episodes import breach_facts
from bot.jobs import Tick
from bot.messages import breach_message, render_text
from bot.notes import thread_note
from bot.store.models import BreachRecord, SLORecord

# changes that change what the message says at a glance: it is printed again, whole
SHOWN = (breaches.OPENED, breaches.RAISED, breaches.LOWERED, breaches.RESOLVED)
CHARTED = (breaches.OPENED, breaches.RESOLVED)  # as in Slack: a chart when a breach opens and ends


@dataclass(frozen=True)
class ChartFiles:
    """Where console mode writes its charts (`SLO_BOT_CHART_DIR`), created when the first is written."""

    directory: Path

    def write(self, data: BurnDown, name: str) -> Path:
        """Draw and write one chart; its path. `name` becomes part of the file's name."""
        from bot import charts  # matplotlib loads with the first chart, not with the bot

        chart = charts.render(data)
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"{_safe(name)}-{data.now:%Y%m%d-%H%M}.png"
        path.write_bytes(chart.png)
        return path


@dataclass(frozen=True)
class _Chart:
    """A chart to draw: the SLO's burn-down as of `now`, read from the store when it is drawn."""

    engine: Engine
    slo: SLO
    slo_id: int
    now: datetime
    name: str


def _safe(name: str) -> str:
    """A file name from an SLO name: a grouped SLO's member names hold `=` and `,`."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "slo"


@dataclass
class ConsoleDestination:
    """The terminal as the place breaches are shown (console mode, `slo-bot demo`; see
    `bot.conversation`): what Slack would show, printed once the transaction that decided it is stored."""

    name = "console"
    out: TextIO = field(default_factory=lambda: sys.stdout)
    seen: list[Change] = field(default_factory=list)
    charts: ChartFiles | None = None  # None: no charts (e.g. `check`)
    written: list[Path] = field(default_factory=list)
    # `slo-bot demo` runs a minute every half second: drawing beside that starves its evaluations of
    # the one interpreter lock, so it draws its charts when it is over (`flush`)
    defer_charts: bool = False
    _deferred: list[_Chart] = field(default_factory=list, repr=False)
    _drawing: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=1, thread_name_prefix="charts"), repr=False
    )
    _pending: list[Future[None]] = field(default_factory=list, repr=False)

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
        drawn: list[_Chart] = []
        if self.charts is not None and tick.record.id is not None and has_chart(tick.slo):
            for change, breach in tick.changes:
                if change.event in CHARTED:
                    # read from the store when drawn, after the commit (as Slack's are when
                    # delivered): a tick opening many breaches queues many charts, not their data
                    name = f"{tick.slo.name}-breach-{breach.id}-{change.event}"
                    drawn.append(_Chart(session.get_bind().engine, tick.slo, tick.record.id, tick.now, name))
        self._print(session, lines, [change for change, _ in tick.changes], drawn)
        return bool(tick.changes)

    def _print(
        self,
        session: Session,
        lines: list[str],
        changes: list[Change],
        drawn: list[_Chart] | None = None,
    ) -> None:
        """Print once the transaction is stored: a crash before that loses the tick, and the next run
        announces its breaches then, never twice (a rolled-back transaction prints nothing)."""

        def show(_session: Session) -> None:
            self.seen.extend(changes)
            if lines:
                print("\n".join(lines), file=self.out, flush=True)
            for chart in drawn or ():
                if self.defer_charts:
                    self._deferred.append(chart)
                    continue
                # drawn on a thread of its own: a chart takes a few hundred milliseconds (the first
                # one a second or more, loading matplotlib), which the evaluations must not wait for
                self._pending = [f for f in self._pending if not f.done()]
                self._pending.append(self._drawing.submit(self._chart, chart))

        if lines or changes:
            event.listen(session, "after_commit", show, once=True)

    def _chart(self, chart: _Chart) -> None:
        """Read, draw and write a chart and print its path; one that cannot be written is said, and
        the alerts go on."""
        assert self.charts is not None
        try:
            with Session(chart.engine) as session:
                data = load_burn_down(session, chart.slo, chart.slo_id, chart.now)
            path = self.charts.write(data, chart.name)
        except Exception as err:  # a full disk, a chart that would not draw: never the alerts' problem
            print(
                f"  could not write the burn-down chart of {chart.slo.name}: {err}", file=self.out, flush=True
            )
            return
        self.written.append(path)
        print(f"  📈 burn-down chart: {path}", file=self.out, flush=True)

    def flush(self) -> None:
        """Draw the deferred charts, and wait for those being drawn."""
        while self._pending:
            self._pending.pop(0).result()
        while self._deferred:
            self._chart(self._deferred.pop(0))
