from datetime import UTC, datetime, timedelta

import pytest

from bot.domain import DataSource, MetricQuery
from bot.sources.base import BadQuery
from bot.sources.simulated import SimulatedSource

DS = DataSource(
    "demo",
    "Simulated",
    {
        "seed": 7,
        "requests_per_minute": 1000,
        "error_ratio": 0.001,
        "incidents": [{"every": "1d", "offset": "14h", "duration": "20m", "error_ratio": 0.5}],
        "gaps": [{"start": "2026-11-20T03:00:00Z", "duration": "30m"}],
    },
)
DAY = datetime(2026, 11, 20, tzinfo=UTC)


def _q(series: str) -> MetricQuery:
    return MetricQuery(DS, series)


def _fetch(
    series: str,
    step: timedelta,
    start: datetime = DAY,
    end: datetime | None = None,
    source: SimulatedSource | None = None,
) -> dict[datetime, float]:
    source = source or SimulatedSource(DS)
    return source.fetch_range(
        _q(series), counter=True, start=start, end=end or start + timedelta(days=1), step=step
    )


def test_same_seed_same_history_and_any_step_sums_the_same() -> None:
    minutes = _fetch("total", timedelta(minutes=1))
    assert minutes == _fetch("total", timedelta(minutes=1), source=SimulatedSource(DS))
    hours = _fetch("total", timedelta(hours=1))
    assert sum(hours.values()) == sum(minutes.values())
    other = SimulatedSource(DataSource("demo", "Simulated", {**DS.connection, "seed": 8}))
    assert _fetch("total", timedelta(minutes=1), source=other) != minutes


def test_traffic_is_uneven_quiet_night_busy_day() -> None:
    hours = _fetch("total", timedelta(hours=1))
    night = hours[DAY + timedelta(hours=4)]
    afternoon = hours[DAY + timedelta(hours=16)]
    assert afternoon > 5 * night


def test_scripted_incident_and_gap() -> None:
    bad = _fetch("bad", timedelta(minutes=1))
    total = _fetch("total", timedelta(minutes=1))
    in_incident = DAY + timedelta(hours=14, minutes=10)
    assert bad[in_incident] / total[in_incident] == pytest.approx(0.5, abs=0.05)
    quiet = DAY + timedelta(hours=10)
    assert bad[quiet] / total[quiet] < 0.01
    gap = [DAY + timedelta(hours=3, minutes=m) for m in range(1, 31)]
    assert not any(t in total for t in gap), "a gap is absent (no data), never zero"
    assert DAY + timedelta(hours=3, minutes=31) in total


def test_unknown_series_is_a_bad_query() -> None:
    with pytest.raises(BadQuery, match="unknown series 'requests'"):
        _fetch("requests", timedelta(minutes=1))
