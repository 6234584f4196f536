"""Maintenance windows, pure: occurrences across daylight-saving changes, and excluded counts against
the plain window arithmetic of `bot.buckets` on known histories."""

import random
from datetime import UTC, datetime, timedelta

import pytest

from bot import policy
from bot.adjustments import Adjustment, Exclusions, current_and_next, excluded_counts, occurrences, subtract
from bot.buckets import HOUR, MINUTE, rollup, window_counts
from bot.budget import WindowCounts
from bot.domain import Bucket, BudgetingMethod
from bot.replay import History
from tests.test_buckets import _slo


def _z(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


SUNDAYS = Adjustment(
    name="db-upgrade",
    first_start=_z("2026-10-11T00:00:00"),  # 02:00 in Berlin (CEST)
    duration=timedelta(hours=2),
    rrule="FREQ=WEEKLY;BYDAY=SU",
    time_zone="Europe/Berlin",
    slos=("x",),
)


def test_a_weekly_0200_berlin_window_keeps_its_local_time_across_the_autumn_change() -> None:
    found = occurrences(SUNDAYS, _z("2026-10-17T00:00:00"), _z("2026-11-02T00:00:00"))
    assert [start for start, _ in found] == [
        _z("2026-10-18T00:00:00"),  # 02:00 CEST
        _z("2026-10-25T00:00:00"),  # 02:00 happens twice: the first (CEST) one
        _z("2026-11-01T01:00:00"),  # 02:00 CET
    ]
    assert all(end - start == timedelta(hours=2) for start, end in found)


def test_across_the_spring_change_a_skipped_local_time_starts_when_the_clocks_jump() -> None:
    found = occurrences(SUNDAYS, _z("2027-03-20T00:00:00"), _z("2027-04-05T00:00:00"))
    assert [start for start, _ in found] == [
        _z("2027-03-21T01:00:00"),  # 02:00 CET
        _z("2027-03-28T01:00:00"),  # 02:00 does not exist: 01:00 UTC, when clocks show 03:00 CEST
        _z("2027-04-04T00:00:00"),  # 02:00 CEST
    ]


def test_occurrences_are_those_overlapping_the_range_and_a_one_off_is_one() -> None:
    # a window under way at the range's start counts; one starting at its end does not
    found = occurrences(SUNDAYS, _z("2026-10-18T01:00:00"), _z("2026-10-25T00:00:00"))
    assert found == [(_z("2026-10-18T00:00:00"), _z("2026-10-18T02:00:00"))]
    once = Adjustment("once", _z("2026-12-01T10:00:00"), timedelta(minutes=30), slos=("x",))
    assert occurrences(once, _z("2026-12-01T00:00:00"), _z("2026-12-02T00:00:00")) == [
        (_z("2026-12-01T10:00:00"), _z("2026-12-01T10:30:00"))
    ]
    assert occurrences(once, _z("2026-12-01T10:30:00"), _z("2026-12-02T00:00:00")) == []


def test_filters_by_slo_service_and_group_definition() -> None:
    by_service = Adjustment("s", _z("2026-12-01T10:00:00"), HOUR, services=("svc",))
    other = Adjustment("o", _z("2026-12-01T10:00:00"), HOUR, slos=("other",))
    slo = _slo()
    exclusions = Exclusions((by_service, other, SUNDAYS))
    found = exclusions.of(slo, _z("2026-11-29T00:00:00"), _z("2026-12-02T00:00:00"))
    # SUNDAYS (slo x) on 2026-11-29 at 01:00 UTC and the service's window
    assert found == (
        (_z("2026-11-29T01:00:00"), _z("2026-11-29T03:00:00")),
        (_z("2026-12-01T10:00:00"), _z("2026-12-01T11:00:00")),
    )
    current, upcoming = current_and_next(exclusions.adjustments, slo, _z("2026-12-01T10:15:00"))
    assert [(a.name, i[0]) for a, i in current] == [("s", _z("2026-12-01T10:00:00"))]
    assert [(a.name, i[0]) for a, i in upcoming] == [("db-upgrade", _z("2026-12-06T01:00:00"))]


def _history(seed: int, count: int, end: datetime) -> list[Bucket]:
    rng = random.Random(seed)
    minutes = []
    for i in range(count):
        total = float(rng.randint(50, 100))
        good = total - rng.randint(0, 5)
        minutes.append(
            Bucket(
                end - (count - i) * MINUTE,
                MINUTE,
                good=good,
                total=total,
                covered=MINUTE,
                good_slices=1.0,
                slices=1.0,
                ratio_sum=good / total,
            )
        )
    return minutes


def _scaled(buckets: list[Bucket], excluded: list[tuple[datetime, datetime]]) -> list[Bucket]:
    """The truth: each bucket keeps the share of it outside every excluded interval."""
    out = []
    for b in buckets:
        size = b.resolution.total_seconds()
        inside = sum(max(0.0, (min(b.end, y) - max(b.start, x)).total_seconds()) for x, y in excluded)
        kept = 1 - inside / size
        out.append(
            Bucket(
                b.start,
                b.resolution,
                good=b.good * kept,
                total=b.total * kept,
                covered=b.covered * kept,
                good_slices=b.good_slices * kept,
                slices=b.slices * kept,
                ratio_sum=b.ratio_sum * kept,
            )
        )
    return out


END = _z("2026-12-01T12:00:00")
WINDOWS = [timedelta(minutes=5), HOUR, 6 * HOUR, 30 * HOUR]
# aligned, cut inside minutes, cut inside hourly buckets, overlapping the windows' starts and end
EXCLUDED = [
    (END - 40 * HOUR, END - 35 * HOUR - 17 * MINUTE - timedelta(seconds=20)),
    (END - 7 * HOUR - timedelta(seconds=30), END - 5 * HOUR - 59 * MINUTE),
    (END - 3 * MINUTE - timedelta(seconds=15), END + HOUR),
]


@pytest.mark.parametrize("coarse_until", [0, 1500, 2000])
def test_excluded_counts_subtract_to_the_sums_of_the_data_outside_them(coarse_until: int) -> None:
    minutes = _history(3, 2400, END)
    stored = rollup(minutes[:coarse_until], HOUR) + minutes[coarse_until:]
    got = subtract(window_counts(stored, END, WINDOWS), excluded_counts(stored, EXCLUDED, END, WINDOWS))
    truth = window_counts(_scaled(stored, EXCLUDED), END, WINDOWS)
    for w in WINDOWS:
        for field in ("good", "total", "good_slices", "slices", "ratio_sum"):
            assert getattr(got[w], field) == pytest.approx(getattr(truth[w], field), rel=1e-9, abs=1e-9), (
                w,
                field,
            )
        assert got[w].covered.total_seconds() == pytest.approx(truth[w].covered.total_seconds())
        inside = sum(max(0.0, (min(END, y) - max(END - w, x)).total_seconds()) for x, y in EXCLUDED)
        assert got[w].excluded.total_seconds() == pytest.approx(inside)
        # the time that counts was all covered: coverage reads 100 %, not the share left
        assert got[w].coverage_ratio == pytest.approx(1.0)


def test_replay_history_excludes_the_same_counts() -> None:
    minutes = _history(4, 2400, END)
    start = END - 2400 * MINUTE
    history = History(start, MINUTE, minutes, EXCLUDED[:2])
    truth = window_counts(_scaled(minutes, EXCLUDED[:2]), END, WINDOWS)
    for w in WINDOWS:
        got = history.counts(END - w, END)
        assert got.total == pytest.approx(truth[w].total)
        assert got.good == pytest.approx(truth[w].good)


def test_no_data_does_not_fire_for_a_quiet_maintenance_window() -> None:
    rules = policy.policy_for(_slo(), timedelta(days=30))
    quiet = WindowCounts(span=rules.no_data_after, excluded=rules.no_data_after)
    counts = {w: WindowCounts(span=w) for w in rules.windows} | {rules.no_data_after: quiet}
    found = {
        s.key: s
        for s in policy.signals(
            rules, counts, target_ratio=0.999, method=BudgetingMethod.OCCURRENCES, remaining_ratio=None
        )
    }
    assert found[policy.NO_DATA].active is False
    counts[rules.no_data_after] = WindowCounts(span=rules.no_data_after)
    found = {
        s.key: s
        for s in policy.signals(
            rules, counts, target_ratio=0.999, method=BudgetingMethod.OCCURRENCES, remaining_ratio=None
        )
    }
    assert found[policy.NO_DATA].active is True
