"""Maintenance windows (budget adjustments) and refunded breaches: the time an SLO does not count.

Pure: occurrences are expanded from a declaration (python-dateutil's RFC 5545 rrule, in the
declaration's time zone) for a range asked, and excluded time is subtracted from window counts
with the same proportional arithmetic as `bot.buckets.window_counts`. No clock, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from bot.budget import WindowCounts
from bot.domain import SLO, Bucket

if TYPE_CHECKING:
    from dateutil.rrule import rrule

Interval = tuple[datetime, datetime]  # [start, end), UTC
MAX_OCCURRENCES = 10_000  # in one range asked: a FREQ=MINUTELY rule over a quarter stays bounded


@dataclass(frozen=True)
class Adjustment:
    """One declared window (`kind: BudgetAdjustment`) or a one-off one made in Slack."""

    name: str
    first_start: datetime  # UTC-aware
    duration: timedelta
    description: str = ""
    rrule: str | None = None  # RFC 5545 RRULE, read in `time_zone`
    time_zone: str = "UTC"
    slos: tuple[str, ...] = ()
    services: tuple[str, ...] = ()

    def applies_to(self, slo: SLO) -> bool:
        """A filter on a grouped SLO's definition covers its members."""
        names = {slo.name, *([slo.member_of] if slo.member_of else [])}
        return bool(names & set(self.slos)) or slo.service in self.services


def parse_rule(text: str, first_start: datetime, time_zone: str) -> rrule:
    """The recurrence of `text` from `first_start`, counted in wall-clock time of `time_zone`.

    Raises ValueError (a bad rule) or KeyError-like ZoneInfoNotFoundError (an unknown zone)."""
    # imported here: `validate` of a catalogue without recurring windows loads no more than YAML
    from dateutil.rrule import rrule, rrulestr

    start = first_start.astimezone(ZoneInfo(time_zone))
    rule = rrulestr(text.removeprefix("RRULE:"), dtstart=start, forceset=False)
    if not isinstance(rule, rrule):  # an RRULE line only; RDATE/EXDATE sets are not the field's
        raise ValueError("expected one RRULE")
    return rule


def occurrences(adjustment: Adjustment, start: datetime, end: datetime) -> list[Interval]:
    """The windows of `adjustment` that overlap [start, end), in UTC, oldest first.

    A recurring window keeps its local start time across daylight-saving changes; a local time the
    clocks skip (02:30 on the spring change) starts at the instant they jump to, and one they pass
    twice (autumn) at its first pass (fold 0). Its duration is elapsed time.
    """
    length = adjustment.duration
    if adjustment.rrule is None:
        found = [adjustment.first_start]
    else:
        rule = parse_rule(adjustment.rrule, adjustment.first_start, adjustment.time_zone)
        zone = ZoneInfo(adjustment.time_zone)
        # a day of margin each side: wall-clock bounds shift by the zone's offset
        lower = (start - length - timedelta(days=1)).astimezone(zone)
        upper = (end + timedelta(days=1)).astimezone(zone)
        found = []
        for at in rule.xafter(lower, count=MAX_OCCURRENCES, inc=True):
            if at > upper:
                break
            found.append(at.replace(tzinfo=zone).astimezone(UTC))
    return [(a, a + length) for a in found if a < end and a + length > start]


def merge(intervals: Sequence[Interval]) -> tuple[Interval, ...]:
    """The union of `intervals` as disjoint ones, oldest first."""
    out: list[Interval] = []
    for a, b in sorted(i for i in intervals if i[1] > i[0]):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return tuple(out)


@dataclass(frozen=True)
class Exclusions:
    """Everything excluded, read once per tick: declared windows and refunded breaches' spans."""

    adjustments: tuple[Adjustment, ...] = ()
    refunds: Mapping[str, tuple[Interval, ...]] = field(default_factory=dict)  # by SLO name

    def of(self, slo: SLO, start: datetime, end: datetime) -> tuple[Interval, ...]:
        """The SLO's excluded time overlapping [start, end), merged and clipped to it."""
        found = [i for a in self.adjustments if a.applies_to(slo) for i in occurrences(a, start, end)]
        found += [i for i in self.refunds.get(slo.name, ()) if i[0] < end and i[1] > start]
        return tuple((max(a, start), min(b, end)) for a, b in merge(found))


NONE = Exclusions()


def excluded_counts(
    buckets: Sequence[Bucket], excluded: Sequence[Interval], end: datetime, windows: Sequence[timedelta]
) -> dict[timedelta, WindowCounts]:
    """What the excluded time holds of each window [end - w, end): a bucket counts in proportion
    to its part inside both (as `bot.buckets.window_counts` counts one cut by a window's start).
    `covered` is the excluded part's covered seconds, `span` the excluded seconds."""
    merged = merge(excluded)
    out: dict[timedelta, WindowCounts] = {}
    for w in set(windows):
        clipped = [(max(a, end - w), min(b, end)) for a, b in merged if a < end and b > end - w]
        acc = [0.0] * 6
        for b in buckets:
            size = b.resolution.total_seconds()
            if not size:
                continue
            inside = sum(max(0.0, (min(b.end, y) - max(b.start, x)).total_seconds()) for x, y in clipped)
            if inside <= 0:
                continue
            share = inside / size
            values = (b.good, b.total, b.good_slices, b.slices, b.ratio_sum, b.covered.total_seconds())
            acc = [a + v * share for a, v in zip(acc, values, strict=True)]
        seconds = sum((y - x).total_seconds() for x, y in clipped)
        good, total, good_slices, slices, ratio_sum, covered = acc
        out[w] = WindowCounts(
            good,
            total,
            good_slices,
            slices,
            ratio_sum,
            timedelta(seconds=covered),
            timedelta(seconds=seconds),
        )
    return out


def without(buckets: Sequence[Bucket], excluded: Sequence[Interval]) -> list[Bucket]:
    """Each bucket keeping only the share of it outside `excluded` (for readers of single buckets)."""
    merged = merge(excluded)
    out = []
    for b in buckets:
        size = b.resolution.total_seconds()
        inside = sum(max(0.0, (min(b.end, y) - max(b.start, x)).total_seconds()) for x, y in merged)
        if size <= 0 or inside <= 0:
            out.append(b)
            continue
        kept = max(0.0, 1.0 - inside / size)
        out.append(
            replace(
                b,
                good=b.good * kept,
                total=b.total * kept,
                covered=b.covered * kept,
                good_slices=b.good_slices * kept,
                slices=b.slices * kept,
                ratio_sum=b.ratio_sum * kept,
            )
        )
    return out


def subtract(
    counts: Mapping[timedelta, WindowCounts], excluded: Mapping[timedelta, WindowCounts]
) -> dict[timedelta, WindowCounts]:
    """`counts` without the excluded part of each window; the excluded seconds are kept in
    `excluded` of the result, so coverage and the no-data policy read only the time that counts."""
    out = dict(counts)
    for w, c in counts.items():
        x = excluded.get(w)
        if x is None or x.span <= timedelta(0):
            continue
        out[w] = WindowCounts(
            good=max(0.0, c.good - x.good),
            total=max(0.0, c.total - x.total),
            good_slices=max(0.0, c.good_slices - x.good_slices),
            slices=max(0.0, c.slices - x.slices),
            ratio_sum=max(0.0, c.ratio_sum - x.ratio_sum),
            covered=max(timedelta(0), c.covered - x.covered),
            span=c.span,
            excluded=min(c.span, x.span),
        )
    return out


def current_and_next(
    adjustments: Sequence[Adjustment], slo: SLO, now: datetime, horizon: timedelta = timedelta(days=35)
) -> tuple[list[tuple[Adjustment, Interval]], list[tuple[Adjustment, Interval]]]:
    """The SLO's windows open at `now`, and the next one of each declaration within `horizon`."""
    current: list[tuple[Adjustment, Interval]] = []
    upcoming: list[tuple[Adjustment, Interval]] = []
    for adjustment in adjustments:
        if not adjustment.applies_to(slo):
            continue
        found = occurrences(adjustment, now, now + horizon)
        current += [(adjustment, i) for i in found if i[0] <= now]
        later = [i for i in found if i[0] > now]
        if later:
            upcoming.append((adjustment, later[0]))
    return current, sorted(upcoming, key=lambda pair: pair[1][0])
