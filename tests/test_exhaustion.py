"""`bot.exhaustion` over the real store (SQLite and PostgreSQL): the evaluation being made counts
before its snapshot is written (a tick's hooks, the terminal's breach message, run before that)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert
from sqlmodel import Session

from bot import exhaustion
from bot.budget import Status
from bot.catalogue.stored import slo_of
from bot.store import db, repo
from bot.store.models import SnapshotRecord
from tests import spenthistory

MINUTE = timedelta(minutes=1)


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
