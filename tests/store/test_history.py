"""Buckets in the store on SQLite and PostgreSQL: ranges, rollups, trims and window sums."""

from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from bot.buckets import HOUR, MINUTE
from bot.domain import Bucket
from bot.store import history, repo
from tests.store.test_repo import NOW, _slo


def _slos(session: Session, count: int) -> list[int]:
    """`count` stored SLOs (s00, s01, ...): their ids."""
    ids = []
    for index in range(count):
        _slo(session, name=f"s{index:02}")
        session.flush()
        record = repo.get_slo(session=session, name=f"s{index:02}")
        assert record is not None and record.id is not None
        ids.append(record.id)
    return ids


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


def test_window_sums_read_every_digit_of_the_stored_numbers(engine: Engine) -> None:
    """Numbers that need all 17 significant digits (sums of fractional counter increases) come back
    from the store's lookups as the very doubles stored, not rounded to 15 digits on the way."""
    odd = Bucket(
        NOW - MINUTE,
        MINUTE,
        good=0.1 + 0.2,
        total=123456789.12345679,
        covered=MINUTE,
        good_slices=2 / 3,
        slices=1e-7 / 3,
        ratio_sum=98765.432109876543,
    )
    with Session(engine) as session:
        _slo(session)
        session.flush()
        record = repo.get_slo(session=session, name="a")
        assert record is not None and record.id is not None
        history.replace_buckets(session=session, slo_id=record.id, start=NOW - HOUR, end=NOW, buckets=[odd])
        sums = history.window_sums(session=session, slo_id=record.id, end=NOW, windows=[MINUTE, HOUR])
    for window in (MINUTE, HOUR):  # the bucket's own numbers, and a window reaching before it
        got = sums[window]
        assert (got.good, got.total, got.good_slices, got.slices, got.ratio_sum) == (
            odd.good,
            odd.total,
            odd.good_slices,
            odd.slices,
            odd.ratio_sum,
        ), window


def test_window_sums_of_many_slos_in_one_statement_equal_each_ones_own(engine: Engine) -> None:
    import random

    from bot.buckets import rollup, window_counts

    rng = random.Random(7)
    ends = [NOW - timedelta(minutes=3), NOW, NOW - timedelta(minutes=61)]
    asks = [
        [timedelta(minutes=5), timedelta(hours=9)],
        [timedelta(minutes=47), timedelta(hours=30), timedelta(hours=2)],
        [],  # nothing to sum: an empty answer, not a missing one
    ]
    stored: dict[int, list[Bucket]] = {}
    with Session(engine) as session:
        for index in range(3):
            _slo(session, name=f"s{index}")
            session.flush()
            record = repo.get_slo(session=session, name=f"s{index}")
            assert record is not None and record.id is not None
            minutes = [
                Bucket(NOW - (2000 - i) * MINUTE, MINUTE, good=float(g), total=float(g + rng.randint(0, 9)))
                for i, g in enumerate(rng.randint(0, 100) for _ in range(2000))
            ]
            stored[record.id] = rollup(minutes[:1500], HOUR) + minutes[1500:]
        history.replace_many(
            session=session,
            writes=[(slo_id, NOW - 40 * HOUR, NOW, buckets) for slo_id, buckets in stored.items()],
        )
        ids = list(stored)
        many = history.window_sums_many(session=session, asks=[(ids[i], ends[i], asks[i]) for i in range(3)])
    assert many[ids[2]] == {}
    for index, slo_id in enumerate(ids[:2]):
        pure = window_counts(stored[slo_id], ends[index], asks[index])
        assert set(many[slo_id]) == set(asks[index])
        for w in asks[index]:
            assert many[slo_id][w].good == pytest.approx(pure[w].good), (slo_id, w)
            assert many[slo_id][w].total == pytest.approx(pure[w].total), (slo_id, w)


def test_ranges_written_together_end_as_if_written_one_after_the_other(engine: Engine) -> None:
    # an SLO's ranges of one tick may overlap (one asked again after a partial answer): the later wins
    with Session(engine) as session:
        _slo(session)
        session.flush()
        record = repo.get_slo(session=session, name="a")
        assert record is not None and record.id is not None
        older = [Bucket(NOW - (10 - i) * MINUTE, MINUTE, good=1.0, total=2.0) for i in range(10)]
        newer = [Bucket(NOW - (5 - i) * MINUTE, MINUTE, good=3.0, total=3.0) for i in range(3)]
        history.replace_many(
            session=session,
            writes=[
                (record.id, NOW - 10 * MINUTE, NOW, older),
                (record.id, NOW - 5 * MINUTE, NOW, newer),  # leaves the last two minutes empty
            ],
        )
        loaded = history.load_buckets(session=session, slo_id=record.id, since=NOW - HOUR)
    assert loaded == older[:5] + newer


def test_window_sums_stay_true_through_every_kind_of_write(engine: Engine) -> None:
    """Window sums come from running sums kept at each write: after writes at the end, rewrites of
    older ranges (with newer rows after them), overlapping ranges, roll-ups (one of them over a bucket
    already there), trims and windows older than what is stored, they equal the sums of the stored
    buckets themselves."""
    import random

    from bot.buckets import window_counts

    rng = random.Random(11)

    def minutes(start: datetime, count: int) -> list[Bucket]:
        return [
            Bucket(
                start + i * MINUTE,
                MINUTE,
                good=float(g),
                total=float(g + rng.randint(0, 5)),
                covered=MINUTE,
                good_slices=float(rng.randint(0, 1)),
                slices=1.0,
                ratio_sum=rng.random(),
            )
            for i, g in enumerate(rng.randint(0, 50) for _ in range(count))
        ]

    windows = [MINUTE * 5, MINUTE * 47, HOUR * 3, HOUR * 9, HOUR * 30, HOUR * 80]
    with Session(engine) as session:
        ids = []
        for name in ("a", "b"):
            _slo(session, name=name)
            session.flush()
            record = repo.get_slo(session=session, name=name)
            assert record is not None and record.id is not None
            ids.append(record.id)
        a, b = ids
        origin = NOW - 10 * HOUR

        def check(end: datetime) -> None:
            stored = {i: history.load_buckets(session=session, slo_id=i, since=end - 100 * HOUR) for i in ids}
            many = history.window_sums_many(session=session, asks=[(i, end, windows) for i in ids])
            for i in ids:
                pure = window_counts([x for x in stored[i] if x.start < end], end, windows)
                for w in windows:
                    for field in ("good", "total", "good_slices", "slices", "ratio_sum"):
                        got, want = getattr(many[i][w], field), getattr(pure[w], field)
                        assert got == pytest.approx(want, abs=1e-6), (i, w, field, end)
                    assert many[i][w].covered.total_seconds() == pytest.approx(
                        pure[w].covered.total_seconds()
                    )

        # ten hours written in one go, then a tick's worth at the end, twice (the last minute again)
        history.replace_many(session=session, writes=[(i, origin, NOW, minutes(origin, 600)) for i in ids])
        check(NOW)
        history.replace_many(
            session=session, writes=[(a, NOW - MINUTE, NOW + MINUTE, minutes(NOW - MINUTE, 2))]
        )
        check(NOW + MINUTE)
        # an older range written again, with the newer rows after it left in place
        history.replace_many(
            session=session, writes=[(b, NOW - 5 * HOUR, NOW - 4 * HOUR, minutes(NOW - 5 * HOUR, 60))]
        )
        check(NOW + MINUTE)
        check(NOW - 4 * HOUR - 7 * MINUTE)
        # overlapping ranges of one SLO in one batch, the second leaving a gap at its end
        history.replace_many(
            session=session,
            writes=[
                (a, NOW - 2 * HOUR, NOW - HOUR, minutes(NOW - 2 * HOUR, 60)),
                (a, NOW - 90 * MINUTE, NOW - 30 * MINUTE, minutes(NOW - 90 * MINUTE, 40)),
            ],
        )
        check(NOW + MINUTE)
        # roll-ups to 5 minutes and to hours; a 5-minute bucket is already stored where one is merged
        t = NOW - 8 * HOUR
        history.replace_many(session=session, writes=[(b, t, t + MINUTE, [Bucket(t, 5 * MINUTE, 7.0, 9.0)])])
        history.replace_many(session=session, writes=[(b, t + MINUTE, t + HOUR, minutes(t + MINUTE, 59))])
        history.roll_up_many(
            session=session,
            asks=[(i, MINUTE, 5 * MINUTE, NOW - 3 * HOUR, None) for i in ids]
            + [(b, MINUTE, 5 * MINUTE, NOW - 7 * HOUR, None)],
        )
        check(NOW + MINUTE)
        check(NOW + HOUR - 2 * MINUTE)  # a window from just before that bucket on
        history.roll_up_many(session=session, asks=[(i, 5 * MINUTE, HOUR, NOW - 6 * HOUR, None) for i in ids])
        check(NOW + MINUTE)
        check(NOW - 6 * HOUR + 5 * MINUTE)  # windows that end in what was rolled up
        # old buckets trimmed: windows that reach before them sum what is left
        history.trim_many(session=session, asks=[(i, NOW - 8 * HOUR) for i in ids])
        check(NOW + MINUTE)
        # more at the end after all that
        history.replace_many(
            session=session,
            writes=[(i, NOW + MINUTE, NOW + 4 * MINUTE, minutes(NOW + MINUTE, 3)) for i in ids],
        )
        check(NOW + 4 * MINUTE)
        # an SLO with nothing stored at all, and a window wholly before anything stored
        history.trim_many(session=session, asks=[(a, NOW + HOUR)])
        assert history.window_sums(session=session, slo_id=a, end=NOW, windows=[HOUR])[HOUR].total == 0.0
        early = history.window_sums(session=session, slo_id=b, end=NOW - 20 * HOUR, windows=[HOUR])
        assert early[HOUR].total == 0.0


def test_window_sums_of_many_slos_equal_each_ones_own(engine: Engine) -> None:
    """80 SLOs of 6 windows each ask 560 lookups (once more than one statement held on SQLite):
    every SLO gets its own sums."""
    windows = [MINUTE * 5, MINUTE * 30, HOUR, HOUR * 6, HOUR * 24, HOUR * 72]
    with Session(engine) as session:
        ids = _slos(session, 80)
        history.replace_many(
            session=session,
            writes=[
                (
                    slo_id,
                    NOW - 2 * HOUR,
                    NOW,
                    [
                        Bucket(NOW - 2 * HOUR + i * MINUTE, MINUTE, good=float(n), total=float(n + 1))
                        for i in range(120)
                    ],
                )
                for n, slo_id in enumerate(ids)
            ],
        )
        many = history.window_sums_many(session=session, asks=[(slo_id, NOW, windows) for slo_id in ids])
        alone = {
            slo_id: history.window_sums(session=session, slo_id=slo_id, end=NOW, windows=windows)
            for slo_id in ids
        }
    for n, slo_id in enumerate(ids):
        assert many[slo_id] == alone[slo_id]
        assert many[slo_id][HOUR].good == 60.0 * n and many[slo_id][HOUR * 72].total == 120.0 * (n + 1)


def test_rolled_up_buckets_hold_what_the_pure_rollup_merges(engine: Engine) -> None:
    """Roll-ups run in SQL for all of a tick's SLOs at once: each merged bucket holds the sums of its
    sources, as `bot.buckets.rollup` merges them, for every SLO, column and tier; the minutes after
    the cut-off and the other SLOs' are left as they were."""
    import random

    from bot.buckets import rollup

    rng = random.Random(3)

    def minutes(start: datetime, count: int) -> list[Bucket]:
        return [
            Bucket(
                start + i * MINUTE,
                MINUTE,
                good=float(rng.randint(0, 50)),
                total=float(rng.randint(50, 60)),
                covered=MINUTE * rng.choice([0, 1, 1, 1]),
                good_slices=float(rng.randint(0, 1)),
                slices=1.0,
                ratio_sum=rng.random(),
            )
            for i in range(count)
        ]

    with Session(engine) as session:
        ids = []
        for name in ("a", "b", "c"):
            _slo(session, name=name)
            session.flush()
            record = repo.get_slo(session=session, name=name)
            assert record is not None and record.id is not None
            ids.append(record.id)
        # (b's minutes begin between two 5-minute marks)
        written = {
            i: minutes(NOW - 5 * HOUR + (7 * MINUTE if i == ids[1] else timedelta(0)), 290) for i in ids
        }
        history.replace_many(
            session=session, writes=[(i, NOW - 5 * HOUR, NOW, found) for i, found in written.items()]
        )
        cut = NOW - 2 * HOUR
        merged = history.roll_up_many(
            session=session, asks=[(i, MINUTE, 5 * MINUTE, cut, None) for i in ids[:2]]
        )
        assert merged == sum(1 for i in ids[:2] for b in written[i] if b.start < cut)
        history.roll_up_many(session=session, asks=[(ids[0], 5 * MINUTE, HOUR, NOW - 3 * HOUR, None)])
        # told where its minutes begin, a roll-up reads and merges only those from there on
        history.roll_up_many(session=session, asks=[(ids[2], MINUTE, 5 * MINUTE, cut, NOW - 4 * HOUR)])
        loaded = {i: history.load_buckets(session=session, slo_id=i, since=NOW - 6 * HOUR) for i in ids}
    fives = {i: rollup([b for b in written[i] if b.start < cut], 5 * MINUTE) for i in ids[:2]}
    want = {
        ids[0]: rollup([b for b in fives[ids[0]] if b.start < NOW - 3 * HOUR], HOUR)
        + [b for b in fives[ids[0]] if b.start >= NOW - 3 * HOUR]
        + [b for b in written[ids[0]] if b.start >= cut],
        ids[1]: fives[ids[1]] + [b for b in written[ids[1]] if b.start >= cut],
        ids[2]: [b for b in written[ids[2]] if b.start < NOW - 4 * HOUR]
        + rollup([b for b in written[ids[2]] if NOW - 4 * HOUR <= b.start < cut], 5 * MINUTE)
        + [b for b in written[ids[2]] if b.start >= cut],
    }
    for i in ids:
        assert [(b.start, b.resolution, b.covered) for b in loaded[i]] == [
            (b.start, b.resolution, b.covered) for b in want[i]
        ], i
        for got, expected in zip(loaded[i], want[i], strict=True):
            for field in ("good", "total", "good_slices", "slices", "ratio_sum"):
                assert getattr(got, field) == pytest.approx(getattr(expected, field)), (i, got.start, field)


def test_a_batch_of_slos_written_over_the_same_minutes_costs_a_statement_per_range(engine: Engine) -> None:
    """A steady tick writes the same newest minute for most of its SLOs: clearing that range,
    trimming and recording coverage each run once for all of them (executemany runs a statement per
    row), and each SLO still ends with exactly its own buckets and coverage."""
    from sqlalchemy import event

    ran: list[str] = []

    def count(
        _conn: object, _cursor: object, statement: str, parameters: object, _ctx: object, many: bool
    ) -> None:
        ran.extend([statement.split()[0]] * (len(parameters) if many else 1))  # type: ignore[arg-type]

    with Session(engine) as session:
        ids = _slos(session, 40)
        old = [
            Bucket(NOW - HOUR + i * MINUTE, MINUTE, good=1.0, total=1.0, covered=MINUTE) for i in range(60)
        ]
        history.replace_many(session=session, writes=[(i, NOW - HOUR, NOW, old) for i in ids])
        newest = [Bucket(NOW, MINUTE, good=float(i), total=float(i + 1), covered=MINUTE) for i in range(40)]
        event.listen(engine, "before_cursor_execute", count)
        try:
            history.replace_many(
                session=session,
                writes=[(i, NOW, NOW + MINUTE, [b]) for i, b in zip(ids, newest, strict=True)]
                + [(ids[0], NOW - 2 * MINUTE, NOW, old[-2:])],  # one SLO also asks two minutes again
            )
            history.trim_many(session=session, asks=[(i, NOW - HOUR + 10 * MINUTE) for i in ids])
            repo.set_coverages(
                session=session, rows=[(i, NOW - HOUR + 10 * MINUTE, NOW + MINUTE) for i in ids]
            )
        finally:
            event.remove(engine, "before_cursor_execute", count)
        assert ran.count("DELETE") == 3, ran  # two distinct ranges cleared, one trim
        assert ran.count("UPDATE") == 1  # the coverage (the running sums are summed again by a WITH)
        for slo_id, bucket in zip(ids, newest, strict=True):
            stored = history.load_buckets(session=session, slo_id=slo_id, since=NOW - 2 * HOUR)
            assert len(stored) == 51 and stored[-1] == bucket
            record = session.get(repo.SLORecord, slo_id)
            assert record is not None and repo.utc(record.covered_to) == NOW + MINUTE
