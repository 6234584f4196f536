"""The harness of the incident flow tests: the fake vendor APIs, and an in-process bot over a real database
whose clock the test moves (evaluations and deliveries happen exactly when the test says)."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from bot import cli, jobs
from bot.conversation import Conversation
from bot.incidents.delivery import IncidentDelivery
from bot.incidents.sync import IncidentDestination
from bot.slack.notify import SlackDestination
from bot.sources.pool import SourcePool
from bot.store import db
from bot.store.incidents import dedup_key
from bot.store.models import AlertRecord, BreachRecord, IncidentRecord, OutboxRecord
from tests.fakeincidents import FakeIncidents

CHANNEL = "C0ALERTS"
SLO = "checkout-availability"
ONCALL = "S0ONCALL"
T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)  # the outage starts; it lasts OUTAGE
OUTAGE = timedelta(minutes=30)

# Flat traffic (600 requests a minute, no errors) but for one full outage: known counts every minute.
CATALOGUE = """
apiVersion: openslo/v1
kind: DataSource
metadata: {{name: sim}}
spec:
  type: Simulated
  connectionDetails:
    seed: 7
    requests_per_minute: 600
    night_ratio: 1.0
    error_ratio: 0.0
    incidents: [{{start: "{start}", duration: "{outage}", error_ratio: 1.0}}]
{targets_documents}---
apiVersion: openslo/v1
kind: SLO
metadata:
  name: checkout-availability
  annotations:
    slo-bot/channel: {channel}
    slo-bot/incident-targets: {targets}
    slo-bot/oncall-group: {oncall}
    slo-bot/escalate-after: 10m
spec:
  service: checkout
  indicator:
    metadata: {{name: checkout-requests}}
    spec:
      ratioMetric:
        counter: true
        good: {{metricSource: {{metricSourceRef: sim, spec: {{query: good}}}}}}
        total: {{metricSource: {{metricSourceRef: sim, spec: {{query: total}}}}}}
  timeWindow: [{{duration: 30d, isRolling: true}}]
  budgetingMethod: Occurrences
  objectives: [{{target: 0.999}}]
"""


@pytest.fixture
def fake() -> Iterator[FakeIncidents]:
    with FakeIncidents() as fake:
        yield fake


@dataclass
class Bot:
    """The scheduler's tick and the incident delivery, in-process, on the test's clock."""

    engine: Engine
    fake: FakeIncidents
    now: datetime = T0
    sources: SourcePool = field(default_factory=SourcePool)
    client: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=5))

    def __post_init__(self) -> None:
        self.conversation = Conversation([SlackDestination(None), IncidentDestination()])
        self.delivery = IncidentDelivery(
            self.engine, self.client, clock=lambda: self.now, conversation=self.conversation
        )

    def tick(self, at: datetime) -> list[jobs.Outcome]:
        self.now = at
        hooks: list[jobs.TickHook] = [self.conversation]
        return jobs.evaluate_all(self.engine, now=at, sources=self.sources, concurrency=2, hooks=hooks)

    def deliver(self) -> int:
        return self.delivery.deliver_due()

    def run_until(self, end: datetime, step: timedelta = timedelta(minutes=1)) -> None:
        """Tick and deliver every `step` from the current time to `end`."""
        at = self.now
        while at < end:
            at += step
            self.tick(at)
            self.deliver()

    def alert(self, key: str = "page") -> AlertRecord:
        with Session(self.engine) as session:
            found = session.exec(
                select(AlertRecord).where(AlertRecord.key == key).order_by(col(AlertRecord.id).desc())
            ).first()
            assert found is not None, f"no {key} alert"
            return found

    def breach(self, kind: str = "burn") -> BreachRecord:
        """The newest breach of `kind`: what Slack shows as one message and the tools as one incident."""
        with Session(self.engine) as session:
            found = session.exec(
                select(BreachRecord).where(BreachRecord.kind == kind).order_by(col(BreachRecord.id).desc())
            ).first()
            assert found is not None, f"no {kind} breach"
            return found

    def breaches(self) -> list[BreachRecord]:
        with Session(self.engine) as session:
            return list(session.exec(select(BreachRecord).order_by(col(BreachRecord.id))))

    def key(self, kind: str = "burn") -> str:
        """The dedup key of the newest breach of `kind`: one per breach."""
        breach = self.breach(kind)
        assert breach.id is not None
        return dedup_key(SLO, breach.id)

    def incidents(self) -> list[IncidentRecord]:
        with Session(self.engine) as session:
            return list(session.exec(select(IncidentRecord).order_by(col(IncidentRecord.id))))

    def outbox(self, kind: str | None = None) -> list[OutboxRecord]:
        with Session(self.engine) as session:
            query = select(OutboxRecord).order_by(col(OutboxRecord.id))
            if kind is not None:
                query = query.where(OutboxRecord.kind == kind)
            return list(session.exec(query))

    def notes(self) -> list[str]:
        return [json.loads(e.payload)["text"] for e in self.outbox("thread_note")]

    def close(self) -> None:
        self.client.close()
        self.sources.close()
        self.engine.dispose()


def apply(database_url: str, path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()) as err:
        code = cli.main(["apply", str(path)])
    assert code == 0, err.getvalue()


@pytest.fixture
def make_bot(
    database_url: str, tmp_path: Path, fake: FakeIncidents, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., Bot]]:
    bots: list[Bot] = []

    def make(targets: str = "pd", routing_key: str | None = None) -> Bot:
        path = tmp_path / "slos.yaml"
        path.write_text(
            CATALOGUE.format(
                start=T0.isoformat().replace("+00:00", "Z"),
                outage=f"{int(OUTAGE.total_seconds() // 60)}m",
                targets_documents=fake.target_documents("pd", "genie", routing_key=routing_key),
                channel=CHANNEL,
                targets=targets,
                oncall=ONCALL,
            )
        )
        apply(database_url, path, monkeypatch)
        bot = Bot(db.make_engine(database_url), fake)
        bots.append(bot)
        return bot

    yield make
    for bot in bots:
        bot.close()
