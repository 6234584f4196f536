"""The store on SQLite and PostgreSQL: migrations, SLO records, status snapshots."""

from datetime import UTC, datetime, timedelta

from alembic import command
from sqlalchemy import Engine
from sqlmodel import Session

from bot.buckets import HOUR, MINUTE
from bot.budget import Status
from bot.domain import Bucket
from bot.store import db, history, repo

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
DOCS = [{"apiVersion": "openslo/v1", "kind": "SLO", "metadata": {"name": "a"}}]


def _slo(session: Session, name: str = "a", docs: list[dict] | None = None, data: str = "d1") -> str:
    return repo.upsert_slo(
        session=session,
        name=name,
        service="svc",
        documents=docs or DOCS,
        data_checksum=data,
        now=NOW,
    )


def test_migrations_match_the_models(engine: Engine) -> None:
    # `alembic check` fails when the models have changes no migration covers
    command.check(db.alembic_config(engine))
    db.upgrade(engine)  # idempotent


def test_apply_is_idempotent_and_a_new_query_discards_history(engine: Engine) -> None:
    with Session(engine) as session:
        assert _slo(session) == "created"
        session.commit()
        assert _slo(session) == "unchanged"
        record = repo.get_slo(session=session, name="a")
        assert record is not None and record.id is not None
        history.replace_buckets(
            session=session,
            slo_id=record.id,
            start=NOW - HOUR,
            end=NOW,
            buckets=[Bucket(NOW - MINUTE, MINUTE, 1, 2, MINUTE)],
        )
        session.commit()
        # a new description keeps the stored history ...
        assert _slo(session, docs=[*DOCS, {"kind": "Service"}]) == "updated"
        assert history.count_buckets(session=session, slo_id=record.id) == 1
        # ... another query means the history no longer describes this SLO
        assert _slo(session, docs=[*DOCS, {"kind": "Service"}], data="d2") == "updated"
        session.commit()
        assert history.count_buckets(session=session, slo_id=record.id) == 0


def test_latest_snapshot_per_slo_and_prune(engine: Engine) -> None:
    with Session(engine) as session:
        _slo(session, "a")
        _slo(session, "b")
        session.flush()
        a = repo.get_slo(session=session, name="a")
        assert a is not None and a.id is not None
        for minutes in (0, 1, 2):
            status = Status(
                NOW + timedelta(minutes=minutes),
                0.99,
                99,
                100,
                10.0,
                -9.0,
                {HOUR: 2.5},
                None,
                "exhausted",
                1.0,
            )
            repo.add_snapshot(session=session, slo_id=a.id, status=status, error=None)
        session.commit()
        latest = dict((r.name, s) for r, s in repo.latest_snapshots(session=session))
        assert latest["b"] is None
        assert latest["a"] is not None
        assert repo.utc(latest["a"].evaluated_at) == NOW + timedelta(minutes=2)
        assert latest["a"].burn_rates == '{"1h": 2.5}'
        assert repo.delete_slos_except(session=session, keep=["b"]) == ["a"]
        session.commit()
        assert [r.name for r in repo.list_slos(session=session)] == ["b"]


def test_ids_by_value_come_in_in_lists_an_old_sqlite_takes() -> None:
    pairs = [(i, "same" if i % 3 else "other") for i in range(2_500)]
    found = list(repo.ids_by(pairs))
    assert all(len(ids) <= repo.IN_MOST <= 999 for _, ids in found)
    assert sorted(i for value, ids in found if value == "same" for i in ids) == [
        i for i in range(2_500) if i % 3
    ]
    assert sorted(i for value, ids in found if value == "other" for i in ids) == list(range(0, 2_500, 3))
