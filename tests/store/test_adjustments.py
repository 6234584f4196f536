"""Maintenance windows in the store on SQLite and PostgreSQL: apply replaces the catalogue's, one-off
ones keep who and why, cancelling ends one early, and an evaluation reads its excluded buckets."""

from datetime import timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from bot.adjustments import Adjustment, excluded_counts, subtract
from bot.buckets import HOUR, MINUTE, rollup, window_counts
from bot.store import adjustments as store
from bot.store import history, repo
from tests.store.test_repo import NOW, _slo
from tests.test_adjustments import _history, _scaled


def _window(name: str, start_hours: float, hours: float = 1.0) -> Adjustment:
    return Adjustment(name, NOW + timedelta(hours=start_hours), timedelta(hours=hours), "why", slos=("a",))


def test_apply_replaces_the_declared_windows_and_keeps_the_one_offs(engine: Engine) -> None:
    with Session(engine) as session:
        store.replace_declared(session=session, adjustments=[_window("x", 1), _window("y", 2)], now=NOW)
        store.add_one_off(session=session, adjustment=_window("slack-1", 3), by="U1", now=NOW)
        session.commit()
        # applying a file with only `x` (changed) replaces `x` and keeps `y`; --prune drops `y`
        store.replace_declared(session=session, adjustments=[_window("x", 5)], now=NOW)
        session.commit()
        names = {a.name: a for a in store.load_exclusions(session=session).adjustments}
        assert sorted(names) == ["slack-1", "x", "y"]
        assert names["x"].first_start == NOW + 5 * HOUR
        store.replace_declared(session=session, adjustments=[_window("x", 5)], now=NOW, prune=True)
        session.commit()
        assert sorted(a.name for a in store.load_exclusions(session=session).adjustments) == ["slack-1", "x"]


def test_cancelling_a_one_off_window_ends_it_and_keeps_the_trail(engine: Engine) -> None:
    with Session(engine) as session:
        under_way = store.add_one_off(session=session, adjustment=_window("now", -1, 2), by="U1", now=NOW)
        later = store.add_one_off(session=session, adjustment=_window("later", 5), by="U1", now=NOW)
        session.commit()
        assert under_way.id is not None and later.id is not None
        assert store.cancel(session=session, ident=under_way.id, by="U2", now=NOW) is not None
        assert store.cancel(session=session, ident=later.id, by="U2", now=NOW) is not None
        assert store.cancel(session=session, ident=later.id, by="U2", now=NOW) is None  # once
        session.commit()
        kept = store.load_exclusions(session=session).adjustments
        # the hour that passed stays excluded; the one not begun is gone
        assert [(a.name, a.duration) for a in kept] == [("now", HOUR)]
        trail = store.one_offs(session=session, since=NOW - 2 * HOUR)
        assert [(r.name, r.created_by, r.cancelled_by, r.description) for r in trail] == [
            ("now", "U1", "U2", "why"),
            ("later", "U1", "U2", "why"),
        ]


@pytest.mark.parametrize("coarse_until", [0, 1800])
def test_excluded_buckets_read_from_the_store_give_the_pure_sums(engine: Engine, coarse_until: int) -> None:
    end = NOW
    minutes = _history(7, 2400, end)
    stored = rollup(minutes[:coarse_until], HOUR) + minutes[coarse_until:]
    windows = [timedelta(minutes=5), HOUR, 6 * HOUR, 30 * HOUR]
    excluded = [
        (end - 34 * HOUR - 20 * MINUTE, end - 33 * HOUR + timedelta(seconds=30)),
        (end - 2 * HOUR, end - HOUR - 30 * MINUTE),
    ]
    with Session(engine) as session:
        _slo(session)
        session.flush()
        record = repo.get_slo(session=session, name="a")
        assert record is not None and record.id is not None
        history.replace_buckets(
            session=session, slo_id=record.id, start=stored[0].start, end=end, buckets=stored
        )
        session.commit()
        sums = history.window_sums(session=session, slo_id=record.id, end=end, windows=windows)
        read = store.buckets_over(session=session, slo_id=record.id, intervals=excluded)
    got = subtract(sums, excluded_counts(read, excluded, end, windows))
    truth = window_counts(_scaled(stored, excluded), end, windows)
    for w in windows:
        assert got[w].total == pytest.approx(truth[w].total, rel=1e-9)
        assert got[w].good == pytest.approx(truth[w].good, rel=1e-9)
        assert got[w].covered.total_seconds() == pytest.approx(truth[w].covered.total_seconds())
