"""Events per time step from the raw samples of counter series: pure arithmetic, no I/O.

Prometheus's `increase()` needs two samples inside each step and extrapolates between them; summing
the increases of consecutive samples here is exact at any scrape interval and offset.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

# Two samples of a series farther apart than this (Prometheus's 5-minute staleness plus jitter) have
# no data between them: slo-bot reads scrape intervals up to 5 minutes.
MAX_SCRAPE_GAP = timedelta(minutes=5, seconds=30)


class CounterIncreases:
    """Sums the increases of counter series into steps ending at multiples of `step` in [first, last].

    Each pair of consecutive samples of a series adds its increase (after a reset: the new value, as
    Prometheus counts it) to the step holding its later sample, so a step's events are the counter at
    the step's last sample minus the counter at the step before's, at any resolution alike (what the
    coarse steps read from the counters' values at step ends). A step is data when a pair of some
    series spans any of it; pairs farther apart than MAX_SCRAPE_GAP are a gap. Feed each series'
    samples in time order, in any number of parts.
    """

    def __init__(self, first: int, last: int, step: int) -> None:
        self.first, self.last, self.step = first, last, step
        self._gap = MAX_SCRAPE_GAP.total_seconds()
        self._last_sample: dict[frozenset[Any], tuple[float, float]] = {}
        self._events: dict[int, float] = {}
        self._covered: set[int] = set()

    def add(self, series: frozenset[Any], samples: list[tuple[float, float]]) -> None:
        previous = self._last_sample.get(series)
        for t1, v1 in samples:
            if previous is not None:
                t0, v0 = previous
                if t1 <= t0:  # the same sample again (Prometheus 2 ranges include their start)
                    continue
                if t1 - t0 <= self._gap:
                    self._count(t0, t1, v1 - v0 if v1 >= v0 else v1)
            previous = (t1, v1)
        if previous is not None:
            self._last_sample[series] = previous

    def _count(self, t0: float, t1: float, delta: float) -> None:
        step = self.step
        holding = math.ceil(t1 / step) * step  # the step (holding - step, holding] holds t1
        if self.first <= holding <= self.last:
            self._events[holding] = self._events.get(holding, 0.0) + delta
        end = max(self.first, (math.floor(t0 / step) + 1) * step)
        while end - step < t1 and end <= self.last:  # every step the pair spans was measured
            self._covered.add(end)
            end += step

    def result(self) -> dict[int, float]:
        """Events per step end (epoch seconds) of the steps that are data."""
        return {end: self._events.get(end, 0.0) for end in sorted(self._covered)}
