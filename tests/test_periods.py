from datetime import UTC, datetime, timedelta

import pytest

from bot.domain import TimeWindow
from bot.periods import period_bounds, period_length


def _calendar(spec: str, start: datetime, zone: str) -> TimeWindow:
    return TimeWindow(spec, timedelta(days=30), is_rolling=False, calendar_start=start, time_zone=zone)


def test_rolling_window_ends_now() -> None:
    now = datetime(2026, 11, 27, 12, tzinfo=UTC)
    window = TimeWindow("28d", timedelta(days=28))
    assert period_bounds(window, now) == (now - timedelta(days=28), now)


@pytest.mark.parametrize(
    ("spec", "zone", "now", "start", "end"),
    [
        # a calendar month in Berlin starts at local midnight: 23:00 UTC in winter
        (
            "1M",
            "Europe/Berlin",
            datetime(2026, 11, 27, 12, tzinfo=UTC),
            datetime(2026, 10, 31, 23, tzinfo=UTC),
            datetime(2026, 11, 30, 23, tzinfo=UTC),
        ),
        # March crosses the DST change: the month is 31 days less one hour long
        (
            "1M",
            "Europe/Berlin",
            datetime(2026, 3, 15, tzinfo=UTC),
            datetime(2026, 2, 28, 23, tzinfo=UTC),
            datetime(2026, 3, 31, 22, tzinfo=UTC),
        ),
        (
            "1Q",
            "America/New_York",
            datetime(2026, 5, 1, tzinfo=UTC),
            datetime(2026, 4, 1, 4, tzinfo=UTC),
            datetime(2026, 7, 1, 4, tzinfo=UTC),
        ),
        (
            "1w",
            "UTC",
            datetime(2026, 1, 8, tzinfo=UTC),
            datetime(2026, 1, 5, tzinfo=UTC),
            datetime(2026, 1, 12, tzinfo=UTC),
        ),
        # before the calendar's start time, periods count backwards from it
        (
            "1M",
            "UTC",
            datetime(2019, 12, 5, tzinfo=UTC),
            datetime(2019, 12, 1, tzinfo=UTC),
            datetime(2020, 1, 1, tzinfo=UTC),
        ),
    ],
)
def test_calendar_periods(spec: str, zone: str, now: datetime, start: datetime, end: datetime) -> None:
    anchor = datetime(2020, 1, 6) if spec == "1w" else datetime(2020, 1, 1)
    window = _calendar(spec, anchor, zone)
    assert period_bounds(window, now) == (start, end)
    assert period_length(window, now) == end - start
