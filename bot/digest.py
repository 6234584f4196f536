"""When a channel's weekly digest is due: a weekday and a local time in an IANA time zone, as
`/slo digest #channel monday 09:00 Europe/Berlin` or the `slo-bot/digest` annotation say it.

Pure: the caller gives `now`. Local times go through `zoneinfo`, so a digest keeps its local hour
across daylight-saving changes (09:00 in Berlin is 08:00 UTC in winter, 07:00 in summer).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
FORMAT = "WEEKDAY HH:MM [TIME_ZONE]  (e.g. monday 09:00 Europe/Berlin; UTC when left out)"


class ScheduleError(ValueError):
    """A schedule text that does not say when."""


@dataclass(frozen=True)
class Schedule:
    weekday: int  # 0 = Monday
    at: time
    zone: str  # an IANA name

    def text(self) -> str:
        return f"{WEEKDAYS[self.weekday]} {self.at:%H:%M} {self.zone}"


def parse_schedule(text: str) -> Schedule:
    """`monday 09:00 Europe/Berlin` (day names may be cut to three letters; the zone defaults to UTC)."""
    words = text.split()
    if len(words) not in (2, 3):
        raise ScheduleError(f"{text!r} is not a schedule: {FORMAT}")
    day = words[0].lower()
    days = [i for i, name in enumerate(WEEKDAYS) if len(day) >= 3 and name.startswith(day)]
    if len(days) != 1:
        raise ScheduleError(f"{words[0]!r} is not a day of the week (monday ... sunday)")
    match = _TIME.match(words[1])
    if match is None:
        raise ScheduleError(f"{words[1]!r} is not a time of day as HH:MM (24-hour clock)")
    zone = words[2] if len(words) == 3 else "UTC"
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(f"{zone!r} is not a time zone (an IANA name such as Europe/Berlin)") from None
    return Schedule(days[0], time(int(match.group(1)), int(match.group(2))), zone)


def _at(day: date, schedule: Schedule) -> datetime:
    """The schedule's local time on `day`, in UTC. A local time that a spring-forward skips is
    taken at its offset before the change (02:30 becomes 03:30 summer time); one that a
    fall-back repeats, at its first occurrence."""
    local = datetime.combine(day, schedule.at, tzinfo=ZoneInfo(schedule.zone))
    return local.astimezone(UTC)


def last_due(schedule: Schedule, now: datetime) -> datetime:
    """The latest time at or before `now` the digest was due, in UTC."""
    today = now.astimezone(ZoneInfo(schedule.zone)).date()
    back = (today.weekday() - schedule.weekday) % 7
    due = _at(today - timedelta(days=back), schedule)
    return due if due <= now else _at(today - timedelta(days=back + 7), schedule)


def next_due(schedule: Schedule, now: datetime) -> datetime:
    """The first time after `now` the digest is due, in UTC."""
    today = now.astimezone(ZoneInfo(schedule.zone)).date()
    ahead = (schedule.weekday - today.weekday()) % 7
    due = _at(today + timedelta(days=ahead), schedule)
    return due if due > now else _at(today + timedelta(days=ahead + 7), schedule)
