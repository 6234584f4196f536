"""Small alerting histories for a real Prometheus: a budget that wobbles around 50 % remaining and a
short outage, on a 1-day rolling SLO, with exact per-minute counts (no noise), backfilled with promtool.

Minute `i` covers [START + i min, + 1 min); its counter sample at the minute's end holds it, so
`increase(...[1m])` at `t` measures the minute starting at `t - 1m`.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from tests.promharness import DAY, HOUR, MINUTE, HarnessError, PrometheusServer, require_tools

FAMILY = "requests"
PER_MINUTE = 1_000
START = datetime(2026, 1, 5, tzinfo=UTC)
EVENTS = START + 4 * DAY  # 4 quiet days first: the 1-day period and the 3-day burn window are full
END = EVENTS + DAY


@dataclass(frozen=True)
class Series:
    name: str
    bad: tuple[int, ...]  # per minute from START; every minute serves PER_MINUTE requests

    @property
    def good_selector(self) -> str:
        return f'{FAMILY}_total{{series="{self.name}",code="200"}}'

    @property
    def total_selector(self) -> str:
        return f'{FAMILY}_total{{series="{self.name}"}}'

    def samples(self) -> Iterator[tuple[int, int, int]]:
        good, bad = 10_000, 3
        for k in range(len(self.bad) + 1):
            if k:
                good += PER_MINUTE - self.bad[k - 1]
                bad += self.bad[k - 1]
            yield int((START + k * MINUTE).timestamp()), good, bad


def _series(name: str, ratio_at: Sequence[tuple[datetime, float]]) -> Series:
    """Errors at the ratio of the latest (from, ratio) at or before each minute, carried exactly."""
    minutes = int((END - START) / MINUTE)
    bad: list[int] = []
    carry = 0.0
    for i in range(minutes):
        at = START + i * MINUTE
        ratio = next(r for t, r in reversed(ratio_at) if t <= at)
        carry += PER_MINUTE * ratio
        bad.append(int(carry + 1e-9))
        carry -= bad[-1]
    return Series(name, tuple(bad))


# The wobble: 0.04 % errors (40 % of a 1-day budget at 99.9 %) until EVENTS; a burst of one hour
# takes the budget spent to 49.5 %; then hours alternate between 0.064 % and 0.016 % errors, so the
# remaining budget swings between 49.5 % and 50.5 % (one point either side of the 50 % threshold)
# every hour; from WOBBLE_END no errors at all: as the minutes at 0.04 % leave the window, the
# remaining budget climbs 1.67 points an hour (50.5 % to 52 % in 54 minutes).
WOBBLE_BURST = EVENTS
WOBBLE_START = EVENTS + HOUR
WOBBLE_CYCLES = 4
WOBBLE_END = WOBBLE_START + WOBBLE_CYCLES * 2 * HOUR


def wobble() -> Series:
    plan: list[tuple[datetime, float]] = [(START, 0.0004), (WOBBLE_BURST, 0.0004 + 0.095 * 1440 / 60 / 1000)]
    for k in range(WOBBLE_CYCLES):
        plan.append((WOBBLE_START + 2 * k * HOUR, 0.00064))
        plan.append((WOBBLE_START + (2 * k + 1) * HOUR, 0.00016))
    plan.append((WOBBLE_END, 0.0))
    return _series("wobble", plan)


# The outage: no errors but 10 % of requests failing for 10 minutes.
OUTAGE_START = EVENTS + 2 * HOUR
OUTAGE_END = OUTAGE_START + 10 * MINUTE


def outage() -> Series:
    return _series("outage", [(START, 0.0), (OUTAGE_START, 0.1), (OUTAGE_END, 0.0)])


def write_openmetrics(series: Sequence[Series], directory: Path) -> list[Path]:
    """One file per UTC day of every series' two counters; timestamps in seconds, `# EOF`."""
    directory.mkdir(parents=True, exist_ok=True)
    days: dict[int, list[str]] = {}
    first = int(START.timestamp())
    last_day = int((END - START) / DAY) - 1
    for s in series:
        rows = list(s.samples())
        for ts, good, _ in rows:
            day = min((ts - first) // 86_400, last_day)
            days.setdefault(day, []).append(f"{s.good_selector} {good} {ts}")
        for ts, _, bad in rows:
            day = min((ts - first) // 86_400, last_day)
            bad_selector = s.good_selector.replace('code="200"', 'code="500"')
            days.setdefault(day, []).append(f"{bad_selector} {bad} {ts}")
    paths = []
    for day, lines in sorted(days.items()):
        path = directory / f"day-{day}.om"
        header = [f"# HELP {FAMILY} Requests served.", f"# TYPE {FAMILY} counter"]
        path.write_text("\n".join([*header, *lines, "# EOF"]) + "\n")
        paths.append(path)
    return paths


@contextmanager
def serve(series: Sequence[Series], root: Path) -> Iterator[str]:
    """A Prometheus on 127.0.0.1 holding every series; yields its URL."""
    require_tools()
    data = root / "data"
    data.mkdir(parents=True)
    for path in write_openmetrics(series, root / "openmetrics"):
        out = path.with_suffix(".blocks")
        command = ["promtool", "tsdb", "create-blocks-from", "openmetrics", "--quiet", str(path), str(out)]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise HarnessError(f"promtool failed on {path}: {result.stderr.strip()[-2000:]}")
        for block in out.iterdir():
            block.rename(data / block.name)
    server = PrometheusServer(data)
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


def catalogue(series: Series, url: str, *, annotations: str = "", window: str = "1d") -> str:
    """OpenSLO v1: a Prometheus DataSource at `url` and a 99.9 % SLO on the series' counters."""
    meta = f"\n  annotations: {{{annotations}}}" if annotations else ""
    return f"""\
apiVersion: openslo/v1
kind: DataSource
metadata:
  name: prom
spec:
  type: Prometheus
  connectionDetails:
    url: {url}
    timeout: 10s
---
apiVersion: openslo/v1
kind: SLO
metadata:
  name: {series.name}{meta}
spec:
  service: faults
  indicator:
    metadata:
      name: {series.name}-requests
    spec:
      ratioMetric:
        counter: true
        good:
          metricSource:
            metricSourceRef: prom
            spec:
              query: '{series.good_selector}'
        total:
          metricSource:
            metricSourceRef: prom
            spec:
              query: '{series.total_selector}'
  timeWindow:
    - duration: {window}
      isRolling: true
  budgetingMethod: Occurrences
  objectives:
    - target: 0.999
"""
