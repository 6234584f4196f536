"""Re-evaluations of a firing breach go in its thread, at most every 30 minutes, and not once acked.

In-process with a simulated clock: the scheduler's `jobs.evaluate_all` with the Slack hook, no
Slack needed (the hook only writes the outbox).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine
from sqlmodel import Session, select

from bot import jobs
from bot.catalogue import load_paths
from bot.checksums import data_checksum
from bot.conversation import Conversation
from bot.slack.notify import NOTE_INTERVAL, SlackDestination, queue_unannounced
from bot.sources.pool import SourcePool
from bot.store import repo
from bot.store.models import BreachRecord, OutboxRecord

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
CATALOGUE = f"""
apiVersion: openslo/v1
kind: DataSource
metadata: {{name: sim}}
spec:
  type: Simulated
  connectionDetails:
    seed: 3
    requests_per_minute: 1000
    error_ratio: 0.0001
    incidents: [{{start: "{(T0 - timedelta(minutes=20)).isoformat()}", duration: 4h, error_ratio: 1.0}}]
---
apiVersion: openslo/v1
kind: SLO
metadata:
  name: api
  annotations: {{slo-bot/channel: C0ALERTS}}
spec:
  service: api
  indicator:
    metadata: {{name: api-requests}}
    spec:
      ratioMetric:
        counter: true
        good: {{metricSource: {{metricSourceRef: sim, spec: {{query: good}}}}}}
        total: {{metricSource: {{metricSourceRef: sim, spec: {{query: total}}}}}}
  timeWindow: [{{duration: 30d, isRolling: true}}]
  budgetingMethod: Occurrences
  objectives: [{{target: 0.999}}]
"""


def _queued(engine: Engine) -> list[tuple[str, str | None]]:
    with Session(engine) as session:
        rows = session.exec(select(OutboxRecord).order_by(OutboxRecord.id)).all()  # type: ignore[arg-type]
        return [(r.kind, r.payload if r.kind == "thread_note" else r.channel) for r in rows]


def _breaches_queued(engine: Engine) -> set[int | None]:
    """The breaches the outbox holds messages and notes of."""
    with Session(engine) as session:
        return set(session.exec(select(OutboxRecord.breach_id)).all())


def _apply(tmp_path: Path, engine: Engine) -> None:
    path = tmp_path / "slos.yaml"
    path.write_text(CATALOGUE)
    entry = load_paths([path]).entries[0]
    with Session(engine) as session:
        repo.upsert_slo(
            session=session,
            name="api",
            service="api",
            documents=entry.documents,
            data_checksum=data_checksum(entry.slo),
            now=T0,
        )
        session.commit()


def test_still_firing_notes_are_rate_limited_and_stop_when_acknowledged(
    tmp_path: Path, engine: Engine
) -> None:
    _apply(tmp_path, engine)
    sources = SourcePool()
    hook = Conversation([SlackDestination(None)])

    def tick(at: datetime) -> list[tuple[str, str | None]]:
        jobs.evaluate_all(engine, now=at, sources=sources, concurrency=2, hooks=[hook])
        return _queued(engine)

    def notes(at: datetime) -> list[str]:
        return [p or "" for kind, p in tick(at) if kind == "thread_note"]

    def still_firing(at: datetime) -> list[str]:
        return [n for n in notes(at) if "Still firing" in n]

    queued = tick(T0)
    # the page, posted once: its budget notice in the same evaluation is no second (identical) update
    assert [q for q in queued if q[0] == "alert_message"] == [("alert_message", "C0ALERTS")]
    # and its burn-down chart, for the breach's thread: queued after the message it goes under
    assert [q for q in queued if q[0] == "chart"] == [("chart", "C0ALERTS")]
    assert queued.index(("chart", "C0ALERTS")) > queued.index(("alert_message", "C0ALERTS"))
    # the budget the outage spent meanwhile is a notice in the page's thread, not a message of its own
    assert [n for k, n in queued if k == "thread_note"] == [
        '{"text": "Budget notice: the error budget fell below 50 % (36.0 % left)."}'
    ]
    assert still_firing(T0 + NOTE_INTERVAL - timedelta(minutes=1)) == []  # too soon for a note
    first = still_firing(T0 + NOTE_INTERVAL)
    # one note for the one breach (its budget notices are not re-announced on their own)
    assert len(first) == 1 and "Still firing: burn" in first[0] and "budget left" in first[0]
    assert still_firing(T0 + NOTE_INTERVAL + timedelta(minutes=10)) == first  # rate-limited
    before_ack = notes(T0 + timedelta(minutes=45))
    with Session(engine) as session:
        firing = session.exec(select(BreachRecord).where(BreachRecord.state == "firing")).all()
        assert len(firing) == 1  # the page and the budget thresholds it crossed: one breach
        for breach in firing:
            hook.acknowledge(session, breach, "U0RESPONDER", T0 + timedelta(minutes=45), on=True)
        session.commit()
    acked = [p or "" for kind, p in _queued(engine) if kind == "thread_note"]
    # the acknowledgement is said in the breach's thread
    assert acked[len(before_ack) :] == [
        '{"text": "<@U0RESPONDER> acknowledged this breach.", "by": "U0RESPONDER"}'
    ]
    assert notes(T0 + 3 * NOTE_INTERVAL) == acked  # an acknowledged breach is not re-announced
    assert len(_breaches_queued(engine)) == 1  # every message and note: of that one breach
    sources.close()


def test_breaches_opened_without_slack_are_announced_when_a_slack_bot_starts(
    tmp_path: Path, engine: Engine
) -> None:
    _apply(tmp_path, engine)
    sources = SourcePool()
    jobs.evaluate_all(engine, now=T0, sources=sources, concurrency=2)  # a `check` without Slack
    sources.close()
    assert _queued(engine) == []
    with Session(engine) as session:
        firing = session.exec(select(BreachRecord).where(BreachRecord.state == "firing")).all()
        assert len(firing) == 1  # the page, with the budget notice it noted: one breach
        assert queue_unannounced(session, None, T0) == len(firing)
        session.commit()
        assert queue_unannounced(session, None, T0) == 0  # queued once
        session.commit()
    assert _queued(engine) == [("alert_message", "C0ALERTS")]
