"""Buckets in the store on SQLite and PostgreSQL: ranges, rollups, trims and window sums."""

from datetime import timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from bot.buckets import HOUR, MINUTE
from bot.domain import Bucket
from bot.store import history, repo
from tests.store.test_repo import NOW, _slo


def test_buckets_round_trip_rollup_and_trim(engine: Engine) -> None:
    with Session(engine) as session:
        _slo(session)
        session.flush()
        record = repo.get_slo(session=session, name="a")
        assert record is not None and record.id is not None
        minutes = [
            Bucket(NOW - 180 * MINUTE + i * MINUTE, MINUTE, good=9.0, total=10.0, covered=MINUTE)
            for i in range(180)
        ]
        history.replace_buckets(
            session=session, slo_id=record.id, start=NOW - 3 * HOUR, end=NOW, buckets=minutes
        )
        session.commit()
        loaded = history.load_buckets(session=session, slo_id=record.id, since=NOW - 3 * HOUR)
        assert loaded == minutes
        # replacing a range replaces, never duplicates
        history.replace_buckets(
            session=session,
            slo_id=record.id,
            start=NOW - 10 * MINUTE,
            end=NOW,
            buckets=minutes[-10:],
        )
        assert history.count_buckets(session=session, slo_id=record.id) == 180
        merged = history.roll_up(
            session=session, slo_id=record.id, source=MINUTE, target=HOUR, before=NOW - HOUR
        )
        session.commit()
        assert merged == 120
        loaded = history.load_buckets(session=session, slo_id=record.id, since=NOW - 3 * HOUR)
        assert [b.resolution for b in loaded[:2]] == [HOUR, HOUR]
        assert sum(b.total for b in loaded) == 1800.0
        assert loaded[0].covered == HOUR
        history.trim_buckets(session=session, slo_id=record.id, before=NOW - 2 * HOUR)
        session.commit()
        assert history.count_buckets(session=session, slo_id=record.id) == 1 + 60


def test_window_sums_in_sql_equal_the_pure_arithmetic(engine: Engine) -> None:
    import random

    from bot.buckets import rollup, window_counts

    rng = random.Random(5)
    minutes = [
        Bucket(
            NOW - (2000 - i) * MINUTE,
            MINUTE,
            good=float(g),
            total=float(g + rng.randint(0, 3)),
            covered=MINUTE,
            good_slices=1.0,
            slices=1.0,
            ratio_sum=0.9,
        )
        for i, g in enumerate(rng.randint(0, 100) for _ in range(2000))
    ]
    stored = rollup(minutes[:1500], HOUR) + minutes[1500:]
    windows = [timedelta(minutes=5), timedelta(minutes=47), timedelta(hours=9), timedelta(hours=30)]
    end = NOW - timedelta(minutes=3)
    with Session(engine) as session:
        _slo(session)
        session.flush()
        record = repo.get_slo(session=session, name="a")
        assert record is not None and record.id is not None
        history.replace_buckets(
            session=session, slo_id=record.id, start=NOW - 40 * HOUR, end=NOW, buckets=stored
        )
        in_sql = history.window_sums(session=session, slo_id=record.id, end=end, windows=windows)
    pure = window_counts(stored, end, windows)
    for w in windows:
        for field in ("good", "total", "good_slices", "slices", "ratio_sum"):
            assert getattr(in_sql[w], field) == pytest.approx(getattr(pure[w], field)), (w, field)
        assert in_sql[w].covered.total_seconds() == pytest.approx(pure[w].covered.total_seconds())
