"""SLO periods: where the current rolling or calendar window starts and ends, in the SLO's time zone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from bot.domain import TimeWindow
from bot.durations import calendar_unit

_MONTHS = {"M": 1, "Q": 3, "Y": 12}


def period_bounds(window: TimeWindow, now: datetime) -> tuple[datetime, datetime]:
    """The current period [start, end) containing `now` (UTC); a rolling one ends at `now`."""
    if window.is_rolling or window.calendar_start is None:
        return now - window.duration, now
    zone = ZoneInfo(window.time_zone)
    local_now = now.astimezone(zone).replace(tzinfo=None)
    count, unit = calendar_unit(window.spec)
    anchor = window.calendar_start
    index = _index_near(anchor, local_now, count, unit)
    # step to the period that holds now; the estimate is off by at most one or two periods
    while _nth(anchor, index, count, unit) > local_now:
        index -= 1
    while _nth(anchor, index + 1, count, unit) <= local_now:
        index += 1
    start = _nth(anchor, index, count, unit).replace(tzinfo=zone).astimezone(UTC)
    end = _nth(anchor, index + 1, count, unit).replace(tzinfo=zone).astimezone(UTC)
    return start, end


def period_length(window: TimeWindow, now: datetime) -> timedelta:
    start, end = period_bounds(window, now)
    return window.duration if window.is_rolling else end - start


def _index_near(anchor: datetime, local_now: datetime, count: int, unit: str) -> int:
    if unit in _MONTHS:
        months = (local_now.year - anchor.year) * 12 + local_now.month - anchor.month
        return months // (_MONTHS[unit] * count)
    step = _fixed(count, unit)
    return int((local_now - anchor) / step)


def _nth(anchor: datetime, index: int, count: int, unit: str) -> datetime:
    """Start of period `index` in wall-clock time: days stay days across DST changes."""
    if unit in _MONTHS:
        months = anchor.month - 1 + index * count * _MONTHS[unit]
        year, month = anchor.year + months // 12, months % 12 + 1
        day = min(anchor.day, _days_in_month(year, month))
        return anchor.replace(year=year, month=month, day=day)
    return anchor + index * _fixed(count, unit)


def _fixed(count: int, unit: str) -> timedelta:
    sizes = {
        "s": timedelta(seconds=1),
        "m": timedelta(minutes=1),
        "h": timedelta(hours=1),
        "d": timedelta(days=1),
        "w": timedelta(weeks=1),
    }
    return count * sizes[unit]


def _days_in_month(year: int, month: int) -> int:
    following = datetime(year + month // 12, month % 12 + 1, 1)
    return (following - timedelta(days=1)).day
