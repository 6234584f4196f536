"""`bot.exhaustion` over the real store (SQLite and PostgreSQL): the evaluation being made counts
before its snapshot is written (a tick's hooks, the terminal's breach message, run before that)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert
from sqlmodel import Session

from bot import cli, exhaustion, groups, parts
from bot.budget import Status
from bot.catalogue.stored import slo_of
from bot.store import db, history, repo
from bot.store.models import SnapshotRecord
from tests import spenthistory, test_composite
from tests.slack.harness import apply_frozen

MINUTE, HOUR, DAY = timedelta(minutes=1), timedelta(hours=1), timedelta(days=1)


def _status(at: datetime, remaining: float) -> Status:
    return Status(at, 0.99, 99.0, 100.0, 1 - remaining, remaining, {}, None, "exhausted", 1.0)


def test_the_evaluation_that_spends_the_budget_is_when_it_was_spent(
    database_url: str, tmp_path: Path
) -> None:
    spenthistory.apply(database_url, tmp_path)
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    engine = db.make_engine(database_url)
    with Session(engine) as session:
        record = repo.get_slo(session=session, name="rolling-spent")
        assert record is not None and record.id is not None
        rows = [
            {
                "slo_id": record.id,
                "evaluated_at": now - k * MINUTE,
                "remaining_ratio": 0.01 * k,
                "burn_rates": "{}",
            }
            | {"state": "burning", "sli": 0.99}
            for k in range(1, 30)
        ]
        session.execute(insert(SnapshotRecord), rows)
        session.commit()
        slo = slo_of(record)
        # the newest stored evaluation still had budget: this one, not stored yet, spent it
        spent = exhaustion.outlook(session, slo, record.id, _status(now, -0.002))
        assert spent.spent and (spent.spent_since, spent.spent_since_exact) == (now, True)
        # and one that has budget left has no "since"
        left = exhaustion.outlook(session, slo, record.id, _status(now, 0.002))
        assert not left.spent and left.spent_since is None and left.back_at is None
    engine.dispose()


JOURNEY = """
apiVersion: openslo/v1
kind: DataSource
metadata: {name: nowhere}
spec: {type: Prometheus, connectionDetails: {url: "http://127.0.0.1:9"}}
---
apiVersion: openslo/v1
kind: SLO
metadata: {name: journey}
spec:
  service: shop
  budgetingMethod: Occurrences
  timeWindow: [{duration: 7d, isRolling: true}]
  objectives:
""" + "".join(
    f"""    - displayName: {name}
      target: {target}
      compositeWeight: {weight}
      indicator:
        metadata: {{name: {name}-requests}}
        spec:
          ratioMetric:
            counter: true
            good: {{metricSource: {{metricSourceRef: nowhere, spec: {{query: '{name}_good'}}}}}}
            total: {{metricSource: {{metricSourceRef: nowhere, spec: {{query: '{name}_total'}}}}}}
"""
    for name, target, weight in (("front", 0.99, 1), ("back", 0.999, 3))
)


def test_a_spent_composite_budget_says_when_it_is_back(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "journey.yaml").write_text(JOURNEY)
    apply_frozen(database_url, tmp_path / "journey.yaml")
    now = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    engine = db.make_engine(database_url)
    with Session(engine) as session:
        record = repo.get_slo(session=session, name="journey")
        assert record is not None and record.id is not None
        slo = slo_of(record)
        # the parts' histories of tests/test_composite.py: `front` (99 %, 1,000 an hour) lost 2,000
        # 150 h ago and 500 a day ago, `back` (99.9 %, 100 an hour, weighing 3) 10 140 h ago and 12
        # two days ago: 1.354 of the budget spent; back when the failures of 140 h ago leave the week
        histories = {"front": (1000.0, {150: 2000.0, 24: 500.0}), "back": (100.0, {140: 10.0, 48: 12.0})}
        for row in parts.records(session, record, slo, now):
            assert row.id is not None
            total, bad = histories[groups.value_of(row.name)]
            buckets = test_composite.hourly(now, total, bad)
            history.replace_buckets(
                session=session, slo_id=row.id, start=now - 7 * DAY, end=now, buckets=buckets
            )
        session.execute(
            insert(SnapshotRecord),
            [
                {"slo_id": record.id, "evaluated_at": now, "remaining_ratio": -0.354, "burn_rates": "{}"}
                | {"state": "exhausted", "sli": 0.98, "good": 98.0, "total": 100.0, "consumed_ratio": 1.354}
            ],
        )
        session.commit()
        spent = exhaustion.outlook(session, slo, record.id, _status(now, -0.354))
    engine.dispose()
    assert spent.spent and spent.back_at == now + 29 * HOUR
    # what `slo-bot status` says of it
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.delenv("SLO_BOT_CONFIG", raising=False)
    capsys.readouterr()
    assert cli.main(["status"]) == 0
    said = [line for line in capsys.readouterr().out.splitlines() if line.startswith("budget: journey:")]
    assert said and said[0].endswith(f"back at {now + 29 * HOUR:%Y-%m-%d %H:%M} UTC if nothing more fails"), (
        said
    )
