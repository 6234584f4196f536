"""A built-in synthetic source for examples, tests and the demo: uneven traffic, scripted incidents.

Every minute's counts derive from a hash of (seed, minute), so any range can be asked in any order
and the same seed always gives the same history.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.domain import DataSource, MetricQuery
from bot.durations import parse_duration
from bot.sources.base import BadQuery

_MINUTE = 60
_MASK = (1 << 64) - 1
SERIES = ("good", "bad", "total", "error_ratio", "success_ratio", "latency_p99_ms")


def _mix(value: int) -> float:
    """splitmix64 finaliser: a well-spread uniform number in [0, 1) from any integer."""
    value = (value + 0x9E3779B97F4A7C15) & _MASK
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & _MASK
    return ((value ^ (value >> 31)) >> 11) / float(1 << 53)


@dataclass(frozen=True)
class Episode:
    """A scripted period: once at `start`, or every `every` at `offset` into the cycle."""

    duration: int  # seconds
    start: int | None = None  # epoch seconds
    every: int | None = None
    offset: int = 0
    error_ratio: float = 1.0

    def active(self, second: int) -> bool:
        if self.every:
            return (second - self.offset) % self.every < self.duration
        return self.start is not None and self.start <= second < self.start + self.duration


def parse_episodes(items: Sequence[Mapping[str, Any]] | None) -> tuple[Episode, ...]:
    episodes = []
    for item in items or ():
        start = item.get("start")
        episodes.append(
            Episode(
                duration=int(parse_duration(str(item.get("duration", "10m"))).total_seconds()),
                start=int(_instant(start).timestamp()) if start is not None else None,
                every=int(parse_duration(str(item["every"])).total_seconds()) if item.get("every") else None,
                offset=int(parse_duration(str(item["offset"])).total_seconds()) if item.get("offset") else 0,
                error_ratio=float(item.get("error_ratio", 1.0)),
            )
        )
    return tuple(episodes)


def _instant(value: Any) -> datetime:
    at = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at


class SimulatedSource:
    """connectionDetails: seed, requests_per_minute (daily peak), night_ratio (quietest hour as a
    fraction of the peak), error_ratio (background), incidents and gaps (lists of episodes)."""

    def __init__(self, datasource: DataSource) -> None:
        conn = datasource.connection
        self.name = datasource.name
        self.seed = int(conn.get("seed", 1))
        self.peak = float(conn.get("requests_per_minute", 600))
        self.night_ratio = float(conn.get("night_ratio", 0.05))
        self.error_ratio = float(conn.get("error_ratio", 0.0005))
        self.incidents = parse_episodes(conn.get("incidents"))
        self.gaps = parse_episodes(conn.get("gaps"))

    def minute(self, minute: int) -> tuple[int, int] | None:
        """(good, total) for the minute starting at epoch minute `minute`; None during a gap."""
        second = minute * _MINUTE
        if any(g.active(second) for g in self.gaps):
            return None
        hour = (second % 86400) / 3600
        daily = self.night_ratio + (1 - self.night_ratio) * (1 - math.cos(2 * math.pi * (hour - 3) / 24)) / 2
        key = (self.seed * 1_000_003 + minute) * 4
        noise = 0.85 + 0.3 * _mix(key)
        total = int(self.peak * daily * noise + _mix(key + 1))
        ratio = self.error_ratio
        for incident in self.incidents:
            if incident.active(second):
                ratio = max(ratio, incident.error_ratio)
        bad = min(total, int(total * ratio + _mix(key + 2)))
        return total - bad, total

    def fetch_range(
        self,
        metric: MetricQuery,
        *,
        counter: bool,
        start: datetime,
        end: datetime,
        step: timedelta,
    ) -> dict[datetime, float]:
        series = metric.query.strip()
        if series not in SERIES:
            raise BadQuery(
                f"simulated source {self.name}: unknown series {series!r} (known: {', '.join(SERIES)})"
            )
        step_s = int(step.total_seconds())
        if step_s < _MINUTE or step_s % _MINUTE:
            raise BadQuery(f"simulated source {self.name}: step must be whole minutes, not {step}")
        first = int(start.timestamp()) // step_s * step_s + step_s
        values: dict[datetime, float] = {}
        for t in range(first, int(end.timestamp()) + 1, step_s):
            value = self._value(series, t - step_s, t)
            if value is not None:
                values[datetime.fromtimestamp(t, UTC)] = value
        return values

    def _value(self, series: str, start_s: int, end_s: int) -> float | None:
        minutes = [self.minute(m) for m in range(start_s // _MINUTE, end_s // _MINUTE)]
        present = [m for m in minutes if m is not None]
        if not present:
            return None
        good = sum(g for g, _ in present)
        total = sum(t for _, t in present)
        if series == "good":
            return float(good)
        if series == "total":
            return float(total)
        if series == "bad":
            return float(total - good)
        if series == "latency_p99_ms":
            return 800.0 if any(self._incident(s) for s in range(start_s, end_s, _MINUTE)) else 120.0
        if total == 0:
            return None
        return (total - good) / total if series == "error_ratio" else good / total

    def _incident(self, second: int) -> bool:
        return any(i.active(second) for i in self.incidents)
