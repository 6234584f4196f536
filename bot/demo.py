"""`slo-bot demo`: the whole pipeline on simulated traffic, with time running 120 times faster.

A temporary SQLite database, a catalogue of two services on the built-in simulated source with a
scripted outage, the real scheduler, store, policy and alert state, and messages in the terminal.
"""

from __future__ import annotations

import sys
import tempfile
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TextIO

from sqlalchemy import Engine
from sqlmodel import Session

from bot import jobs
from bot.annotations import group_by_of
from bot.buckets import floor_time
from bot.burndown import load_burn_down
from bot.catalogue import load_paths
from bot.catalogue.stored import slo_of
from bot.checksums import data_checksum
from bot.console import SHOWN, ChartFiles, ConsoleDestination
from bot.conversation import Conversation
from bot.durations import format_duration
from bot.messages import span
from bot.runner import Runner
from bot.scheduler import start_scheduler
from bot.settings import Settings
from bot.sources.pool import SourcePool
from bot.store import db, repo

CATALOGUE = """\
apiVersion: openslo/v1
kind: DataSource
metadata: {{name: demo}}
spec:
  type: Simulated
  connectionDetails:
    seed: 7
    requests_per_minute: 900
    error_ratio: 0.0002
    incidents:
      - start: "{outage_start}"
        duration: {outage_minutes}m
        error_ratio: 1.0
---
apiVersion: openslo/v1
kind: AlertCondition
metadata: {{name: fast-burn}}
spec:
  severity: page
  condition: {{kind: burnrate, op: gt, threshold: 14.4, lookbackWindow: 1h, alertAfter: 1m}}
---
apiVersion: openslo/v1
kind: AlertPolicy
metadata: {{name: page-on-fast-burn}}
spec:
  conditions: [{{conditionRef: fast-burn}}]
---
apiVersion: openslo/v1
kind: SLO
metadata: {{name: checkout-availability}}
spec:
  description: 99.9 % of checkout requests succeed over 30 days.
  service: checkout
  indicator:
    metadata: {{name: checkout-requests}}
    spec:
      ratioMetric:
        counter: true
        good: {{metricSource: {{metricSourceRef: demo, spec: {{query: good}}}}}}
        total: {{metricSource: {{metricSourceRef: demo, spec: {{query: total}}}}}}
  timeWindow: [{{duration: 30d, isRolling: true}}]
  budgetingMethod: Occurrences
  objectives: [{{target: 0.999}}]
  alertPolicies: [{{alertPolicyRef: page-on-fast-burn}}]
"""


@dataclass(frozen=True)
class Script:
    start: datetime  # simulated time of the first evaluation
    outage_after: timedelta = timedelta(minutes=5)
    outage: timedelta = timedelta(minutes=8)
    length: timedelta = timedelta(minutes=22)
    tick_seconds: float = 0.5  # wall-clock time per simulated minute


class SimulatedClock:
    """Advances one simulated minute at every reading: each tick sees the next minute."""

    def __init__(self, start: datetime) -> None:
        self.now = start
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            current = self.now
            self.now += timedelta(minutes=1)
            return current


def run_demo(out: TextIO = sys.stdout, script: Script | None = None, chart_dir: Path | None = None) -> int:
    script = script or Script(start=floor_time(datetime.now(UTC), timedelta(minutes=1)))
    outage_start = script.start + script.outage_after
    with tempfile.TemporaryDirectory(prefix="slo-bot-demo-") as folder:
        path = Path(folder) / "demo.yaml"
        path.write_text(
            CATALOGUE.format(
                outage_start=outage_start.isoformat(),
                outage_minutes=int(script.outage / timedelta(minutes=1)),
            )
        )
        catalogue = load_paths([path])
        if catalogue.problems:  # a bug in the demo itself
            print("\n".join(map(str, catalogue.problems)), file=sys.stderr)
            return 1
        engine = db.make_engine(f"sqlite:///{Path(folder) / 'demo.db'}")
        db.upgrade(engine)
        with Session(engine) as session:
            for entry in catalogue.entries:
                repo.upsert_slo(
                    session=session,
                    name=entry.slo.name,
                    service=entry.slo.service,
                    documents=entry.documents,
                    data_checksum=data_checksum(entry.slo),
                    group_by=group_by_of(entry.slo.annotations),
                    now=script.start,
                )
            session.commit()
        print(
            f"slo-bot demo: checkout-availability, 99.9 % over 30 days, on simulated traffic.\n"
            f"Simulated time starts at {script.start:%H:%M} UTC and runs one minute every "
            f"{script.tick_seconds:g} s; a full outage starts at {outage_start:%H:%M} "
            f"for {span(script.outage)}. The first evaluation backfills 30 days.\n",
            file=out,
            flush=True,
        )
        sources = SourcePool()
        clock = SimulatedClock(script.start)
        charts = ChartFiles(chart_dir or Path(Settings.from_env().chart_dir))
        console = ConsoleDestination(out, charts=charts, defer_charts=True)
        runner = Runner(engine, sources, concurrency=4, clock=clock, hooks=[Conversation([console])])
        ticks = int(script.length / timedelta(minutes=1)) + 1
        done = threading.Event()

        def tick() -> None:
            outcomes = runner.tick()
            for outcome in outcomes:
                _progress(out, outcome)
            if runner.ticks >= ticks:
                done.set()

        scheduler = start_scheduler(tick, timedelta(seconds=script.tick_seconds), align=False)
        try:
            done.wait()
        finally:
            scheduler.shutdown(wait=True)
            sources.close()
        try:
            # the charts of the breach's opening and end, drawn (read from the store) now the clock
            # has stopped
            console.flush()
            final = _final_chart(engine, charts, clock.now - timedelta(minutes=1))
        finally:
            engine.dispose()
    story = (
        "; ".join(f"{c.severity} breach {c.event} at {c.at:%H:%M}" for c in console.seen if c.event in SHOWN)
        or "no breach"
    )
    print(f"demo finished: {story}.", file=out)
    print(f"burn-down chart of checkout-availability: {final}", file=out)
    return 0


def _final_chart(engine: Engine, charts: ChartFiles, now: datetime) -> Path:
    """The SLO's burn-down as the demo leaves it: its 30 days, the outage, both breach spans."""
    with Session(engine) as session:
        record = repo.get_slo(session=session, name="checkout-availability")
        assert record is not None and record.id is not None
        data = load_burn_down(session, slo_of(record), record.id, now)
    return charts.write(data, "checkout-availability-demo")


def _progress(out: TextIO, outcome: jobs.Outcome) -> None:
    status = outcome.status
    if status is None:
        return
    burns = "  ".join(
        f"{format_duration(w)}={'-' if b is None else f'{b:7.1f}'}" for w, b in status.burn_rates.items()
    )
    remaining = "-" if status.remaining_ratio is None else f"{status.remaining_ratio * 100:5.1f} %"
    alerts = ", ".join(a["severity"] or "" for a in outcome.alerts) or "none"
    print(
        f"{status.evaluated_at:%H:%M}  {outcome.name}  burn {burns}  budget left {remaining}  "
        f"open breaches: {alerts}",
        file=out,
        flush=True,
    )
