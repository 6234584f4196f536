"""The generated history has the shape the Prometheus integration tests rely on (no Prometheus)."""

from __future__ import annotations

import math
import statistics
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path

from tests.promharness import (
    DAY,
    HOUR,
    MINUTE,
    ONGOING_INCIDENT_ERROR_RATIO,
    PAST_INCIDENT_ERROR_RATIO,
    History,
)


def _minutes_at(history: History, hour: int) -> list[int]:
    """Total events of every minute within half an hour of `hour`:00 UTC."""
    return [
        history.total(m, m + MINUTE)
        for m in history.minute_starts(history.start, history.end)
        if abs((m.hour * 60 + m.minute) - hour * 60) <= 30 and m not in history.gap_minutes
    ]


def test_traffic_is_quiet_at_night_and_busy_by_day(prom_history: History) -> None:
    assert 10 <= statistics.median(_minutes_at(prom_history, 3)) <= 40
    assert 1_500 <= statistics.median(_minutes_at(prom_history, 15)) <= 2_600


def test_error_ratios(prom_history: History) -> None:
    quiet = (prom_history.end - 7 * DAY, prom_history.end - 6 * DAY)
    assert 0.0002 <= prom_history.bad(*quiet) / prom_history.total(*quiet) <= 0.0005
    past = prom_history.past_incident
    assert past[1] - past[0] == 45 * MINUTE
    assert abs(past[0] - (prom_history.end - 3 * DAY)) <= 12 * HOUR
    _near(prom_history.bad(*past), prom_history.total(*past), PAST_INCIDENT_ERROR_RATIO)
    ongoing = prom_history.ongoing_incident
    assert ongoing == (prom_history.end - 20 * MINUTE, prom_history.end)
    _near(prom_history.bad(*ongoing), prom_history.total(*ongoing), ONGOING_INCIDENT_ERROR_RATIO)


def _near(bad: int, total: int, ratio: float) -> None:
    """`bad` of `total` events is `ratio` within 4 standard deviations of a binomial draw: the
    history ends now, and an incident at night has a few hundred events (31 of 444 is 2 sigma from
    5 %), by day tens of thousands."""
    assert total > 100
    sigma = math.sqrt(ratio * (1 - ratio) / total)
    assert abs(bad / total - ratio) <= 4 * sigma, (bad, total, ratio)


def test_averaging_per_minute_ratios_is_wrong(prom_history: History) -> None:
    a = prom_history.past_incident[0] - 12 * HOUR
    minutes = prom_history.minute_starts(a, a + DAY)
    ratios = [prom_history.bad(m, m + MINUTE) / prom_history.total(m, m + MINUTE) for m in minutes]
    true_ratio = prom_history.bad(a, a + DAY) / prom_history.total(a, a + DAY)
    assert statistics.mean(ratios) > 3 * true_ratio


def test_gap_has_no_samples_and_its_minutes_are_unknown(prom_history: History) -> None:
    first, last = prom_history.gap
    assert first == prom_history.end - 2 * DAY
    assert last - first == 30 * MINUTE
    assert not [t for t, _, _ in prom_history.samples() if first <= t < last]
    assert min(prom_history.gap_minutes) == first - MINUTE
    assert max(prom_history.gap_minutes) == last - MINUTE
    a, b = first - HOUR, last + HOUR
    assert prom_history.known_minutes(a, b) == (b - a) / MINUTE - 31
    assert prom_history.total(first, last) == 0


def test_counters_reset_once_and_otherwise_only_grow(prom_history: History) -> None:
    drops = [
        (t, good, bad)
        for (_, good_before, bad_before), (t, good, bad) in pairwise(prom_history.samples())
        if good < good_before or bad < bad_before
    ]
    reset = prom_history.reset_at
    assert reset == prom_history.end - 5 * DAY
    assert len(drops) == 1
    assert drops[0] == (
        reset,
        prom_history.good(reset - MINUTE, reset),
        prom_history.bad(reset - MINUTE, reset),
    )


def test_openmetrics_files_are_what_promtool_accepts(prom_history: History, tmp_path: Path) -> None:
    paths = prom_history.write_openmetrics(tmp_path, since=prom_history.end - 2 * DAY)
    assert len(paths) == 2  # one file per day
    lines = paths[0].read_text().splitlines()
    assert lines[:2] == [
        "# HELP http_requests Requests served, by status code.",
        "# TYPE http_requests counter",
    ]
    assert lines[-1] == "# EOF"
    for line in lines[2:-1]:
        name, value, stamp = line.rsplit(" ", 2)
        assert name in (prom_history.good_selector, prom_history.bad_selector)
        assert int(stamp) % 60 == 0  # seconds, on the minute
        assert int(stamp) >= (prom_history.end - 2 * DAY).timestamp()
        assert int(value) >= 0


def test_generation_is_deterministic() -> None:
    end = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    one = History.generate(end=end, days=2)
    assert one == History.generate(end=end, days=2)
    assert one != History.generate(end=end, days=2, seed=2)
