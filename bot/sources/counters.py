"""Events per time step from the raw samples of counter series: pure arithmetic, no I/O.

Prometheus's `increase()` needs two samples inside each step and extrapolates between them; summing
the increases of consecutive samples here is exact at any scrape interval and offset.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

# Two samples of a series farther apart than this (Prometheus's 5-minute staleness plus jitter) have
# no data between them: slo-bot reads scrape intervals up to 5 minutes.
MAX_SCRAPE_GAP = timedelta(minutes=5, seconds=30)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class CounterIncreases:
    """Sums the increases of counter series into steps ending at multiples of `step` in [first, last].

    Each pair of consecutive samples of a series adds its increase (after a reset: the new value, as
    Prometheus counts it) to the steps it spans, in proportion to the time inside each. A step is
    data when the pairs of some series cover any of it (a step at the edge of a gap holds what was
    measured of it, so sums agree at every resolution); pairs farther apart than MAX_SCRAPE_GAP are
    a gap. Feed each series' samples in time order, in any number of parts.
    """

    def __init__(self, first: int, last: int, step: int) -> None:
        self.first, self.last, self.step = first, last, step
        self._gap = MAX_SCRAPE_GAP.total_seconds()
        self._last_sample: dict[frozenset[Any], tuple[float, float]] = {}
        self._events: dict[int, float] = {}
        self._covered: dict[tuple[frozenset[Any], int], float] = {}

    def add(self, series: frozenset[Any], samples: list[tuple[float, float]]) -> None:
        previous = self._last_sample.get(series)
        for t1, v1 in samples:
            if previous is not None:
                t0, v0 = previous
                if t1 <= t0:  # the same sample again (Prometheus 2 ranges include their start)
                    continue
                if t1 - t0 <= self._gap:
                    self._spread(series, t0, t1, v1 - v0 if v1 >= v0 else v1)
            previous = (t1, v1)
        if previous is not None:
            self._last_sample[series] = previous

    def _spread(self, series: frozenset[Any], t0: float, t1: float, delta: float) -> None:
        step = self.step
        end = max(self.first, (math.floor(t0 / step) + 1) * step)
        while end - step < t1 and end <= self.last:
            inside = min(t1, end) - max(t0, end - step)
            if inside > 0:
                self._events[end] = self._events.get(end, 0.0) + delta * inside / (t1 - t0)
                key = (series, end)
                self._covered[key] = self._covered.get(key, 0.0) + inside
            end += step

    def result(self) -> dict[datetime, float]:
        covered: dict[int, float] = {}
        for (_, end), seconds in self._covered.items():
            covered[end] = max(covered.get(end, 0.0), seconds)
        return {
            _EPOCH + timedelta(seconds=end): self._events.get(end, 0.0)
            for end, seconds in sorted(covered.items())
            if seconds > 0
        }
