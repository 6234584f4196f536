"""Alerting scenarios for a real Prometheus: per-minute true counts of five services (an outage, a slow
burn, a quiet baseline, low traffic, a scrape gap), the alerts the policy's arithmetic predicts for
each, and helpers to backfill them all into one TSDB and point an OpenSLO catalogue at them.
"""

from __future__ import annotations

import math
import os
import random
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from itertools import accumulate
from pathlib import Path

import httpx

from tests.promharness import DAY, HOUR, MINUTE, HarnessError, PrometheusServer, require_tools

FAMILY = "requests"  # OpenMetrics names the counter family without `_total`
TARGET = 0.999
PERIOD = 30 * DAY
HISTORY_START = datetime(2025, 3, 3, tzinfo=UTC)
LEAD = 31 * DAY  # a full 30-day SLO window (and the 3-day burn window) before any scenario starts
EVENTS_START = HISTORY_START + LEAD
HISTORY_END = EVENTS_START + 3 * DAY + 7 * HOUR
PER_MINUTE = 1_000.0  # "realistic" traffic: ~1,000 requests a minute, Poisson noise (±3 %)

PAGE, TICKET, NO_DATA = "page", "ticket", "no-data"
# SPEC.md's default tiers: (severity, long window, short window, budget spent at trigger)
TIERS = (
    (PAGE, HOUR, 5 * MINUTE, 0.02),
    (PAGE, 6 * HOUR, 30 * MINUTE, 0.05),
    (TICKET, DAY, 2 * HOUR, 0.10),
    (TICKET, 3 * DAY, 6 * HOUR, 0.10),
)
BUDGET_THRESHOLDS = (0.5, 0.25, 0.0)
BUDGET_MARGIN = 0.02  # README: a budget alert clears once 2 points above its threshold
NO_DATA_AFTER = 10 * MINUTE
MIN_BAD_EVENTS = 3.0

Transition = tuple[datetime, str, str]  # (at, alert key, "firing" | "resolved")


def factor(spent: float, long: timedelta) -> float:
    """Sloth's burn threshold: budget% x period / long window (30d: 14.4, 6, 3, 1)."""
    return spent * (PERIOD / long)


@dataclass(frozen=True)
class Scenario:
    """One service's per-minute true counts from HISTORY_START, and what should alert on it.

    Minute `i` covers [HISTORY_START + i min, + 1 min); its counter sample at the minute's end holds
    it, so `increase(...[1m])` at `t` measures the minute starting at `t - 1m`.
    """

    name: str
    summary: str
    good: tuple[int, ...]
    bad: tuple[int, ...]
    span: tuple[datetime, datetime]  # replay / step from, to (inclusive)
    gap: tuple[datetime, datetime] | None = None  # no samples at any time in [from, to)
    wanted: frozenset[str] = frozenset()  # alert keys that should fire; any other one is false
    detect_key: str | None = None  # the alert whose detection time is measured
    detect_theory: datetime | None = None  # when the arithmetic says it should be detected
    problem_start: datetime | None = None  # when the service began failing (detection counts from here)
    problem_end: datetime | None = None  # when the service recovered (resets count from here)
    reset_theory: datetime | None = None  # when the arithmetic says `detect_key` should resolve
    focus: tuple[datetime, ...] = ()  # instants the scheduler path steps through minute by minute
    notes: Mapping[str, datetime] = field(default_factory=dict)

    @property
    def good_selector(self) -> str:
        return f'{FAMILY}_total{{scenario="{self.name}",code="200"}}'

    @property
    def bad_selector(self) -> str:
        return f'{FAMILY}_total{{scenario="{self.name}",code="500"}}'

    @property
    def total_selector(self) -> str:
        return f'{FAMILY}_total{{scenario="{self.name}"}}'

    @cached_property
    def unknown(self) -> frozenset[int]:
        """Indexes of minutes Prometheus cannot measure: a sample is missing at either edge."""
        if self.gap is None:
            return frozenset()
        first, last = (_index(t) for t in self.gap)
        return frozenset(range(first - 1, last))

    @cached_property
    def _prefix(self) -> tuple[list[int], list[int], list[int]]:
        known = [0 if i in self.unknown else 1 for i in range(len(self.good))]
        good = [g * k for g, k in zip(self.good, known, strict=True)]
        total = [(g + b) * k for g, b, k in zip(self.good, self.bad, known, strict=True)]
        return ([0, *accumulate(good)], [0, *accumulate(total)], [0, *accumulate(known)])

    def counts(self, a: datetime, b: datetime) -> tuple[int, int, int]:
        """(good, total, minutes with data) in [a, b), unknown minutes left out."""
        i, j = (max(0, min(len(self.good), _index(t))) for t in (a, b))
        good, total, known = self._prefix
        return good[j] - good[i], total[j] - total[i], known[j] - known[i]

    def samples(self) -> Iterator[tuple[int, int, int]]:
        """(unix seconds, good counter, bad counter) each minute from HISTORY_START, minus the gap."""
        good_value, bad_value = 52_000, 7  # the process was up before the history starts
        for k in range(len(self.good) + 1):
            if k:
                good_value += self.good[k - 1]
                bad_value += self.bad[k - 1]
            t = HISTORY_START + k * MINUTE
            if self.gap is None or not self.gap[0] <= t < self.gap[1]:
                yield int(t.timestamp()), good_value, bad_value


def _index(t: datetime) -> int:
    if t.second or t.microsecond:
        raise ValueError(f"{t} is not on a minute boundary")
    return int((t - HISTORY_START) / MINUTE)


def _minutes() -> int:
    return int((HISTORY_END - HISTORY_START) / MINUTE)


def _requests(rng: random.Random, mean: float) -> int:
    if mean > 50:  # the normal approximation of Poisson is good here, and cheap
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, k, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        k += 1
        product *= rng.random()
    return k


class _Errors:
    """Deterministic errors at a given ratio: the fractional part carries to the next minute, so the
    ratio holds exactly over any window and the rules' arithmetic predicts alerts to the minute."""

    def __init__(self) -> None:
        self.carry = 0.0

    def __call__(self, total: int, ratio: float) -> int:
        self.carry += total * ratio
        bad = min(total, int(self.carry))
        self.carry -= bad
        return bad


def _steady(
    name: str, seed: int, ratio_at: Mapping[int, float], background: float
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    rng = random.Random(f"{name}-{seed}")
    errors = _Errors()
    good: list[int] = []
    bad: list[int] = []
    for i in range(_minutes()):
        total = _requests(rng, PER_MINUTE)
        failed = errors(total, ratio_at.get(i, background))
        good.append(total - failed)
        bad.append(failed)
    return tuple(good), tuple(bad)


def outage(seed: int) -> Scenario:
    """100 % of requests fail for 10 minutes; background errors 0.01 % (burn 0.1)."""
    start = EVENTS_START + 2 * HOUR
    end = start + 10 * MINUTE
    ratios = {_index(start) + i: 1.0 for i in range(10)}
    good, bad = _steady("outage", seed, ratios, 0.0001)
    # 14.4x over 1h needs 14.4 x 0.1 % x 60 min = 51.84 s of full outage (SPEC.md golden number);
    # evaluated once a minute, the first evaluation after it is start + 1m (the 5m window burns 200x).
    detect = start + timedelta(seconds=51.84)
    # The 1h/5m tier stops once the 5m window is clean (end + 5m), but the 6h/30m tier (6x: 0.6 %
    # errors) holds while a single outage minute (1,000 bad of 30,000) is in the 30m window, and its
    # 6h window stays at 10/360 = 2.8 % > 0.6 %: the page resolves when the 30m window is clean.
    reset = end + 30 * MINUTE
    # The 3d/6h tier holds from the 4th outage minute (4,000 bad of 4.3 M: 0.93x + 0.1x background),
    # but a firing page suppresses the ticket: it fires when the page resolves and lasts while the
    # 6h window holds an outage minute (1,000 of 360,000 is 2.8x).
    ticket_end = end + 6 * HOUR
    return Scenario(
        name="outage",
        summary="10-minute 100 % outage",
        good=good,
        bad=bad,
        span=(start - 20 * MINUTE, ticket_end + 20 * MINUTE),
        wanted=frozenset({PAGE, TICKET}),
        detect_key=PAGE,
        detect_theory=detect,
        problem_start=start,
        problem_end=end,
        reset_theory=reset,
        focus=(start, end),
        notes={"start": start, "end": end, "ticket_end": ticket_end},
    )


def slow_burn(seed: int) -> Scenario:
    """A steady 5x burn (0.5 % errors) for 3 days over a 0.01 % (0.1x) background."""
    start = EVENTS_START + HOUR
    end = start + 3 * DAY
    beta, burn = 0.1, 5.0
    ratios = {_index(start) + i: burn * (1 - TARGET) for i in range(int(3 * DAY / MINUTE))}
    good, bad = _steady("slow-burn", seed, ratios, beta * (1 - TARGET))
    # x after the start, a long window w burns (5x + 0.1(w - x)) / w: it exceeds threshold f once
    # x > w (f - 0.1) / 4.9. 3d/6h at 1x: 13h13.5m (its 6h window after 66 min); 1d/2h at 3x: 14h12.2m.
    # So the 3d/6h tier tickets first. (Without background both would say 14.4 h.)
    ticket_3d = start + 3 * DAY * (1 - beta) / (burn - beta)
    ticket_1d = start + DAY * (3 - beta) / (burn - beta)
    # After the end, a short window s still burns (5(s - y) + 0.1y) / s: above f while y < s (5 - f) / 4.9.
    # The 2h window drops below 3x after 49 min, the 6h one below 1x after 4h53.9m: the ticket resolves.
    reset = end + 6 * HOUR * (burn - 1) / (burn - beta)
    # 30d budget: consumed (0.1 (30d - x) + 5x) / 30d reaches 50 % at x = 30d x 0.4 / 4.9 = 2d10h46.5m.
    budget_half = start + PERIOD * (0.5 - beta) / (burn - beta)
    return Scenario(
        name="slow-burn",
        summary="5x burn for 3 days",
        good=good,
        bad=bad,
        span=(start - 20 * MINUTE, end + 5 * HOUR + 20 * MINUTE),
        wanted=frozenset({TICKET, "budget-50"}),
        detect_key=TICKET,
        detect_theory=min(ticket_3d, ticket_1d),
        problem_start=start,
        problem_end=end,
        reset_theory=reset,
        focus=(),
        notes={
            "start": start,
            "end": end,
            "ticket_3d_tier": ticket_3d,
            "ticket_1d_tier": ticket_1d,
            "budget_half": budget_half,
        },
    )


def baseline(seed: int) -> Scenario:
    """Errors well under budget: about 0.02 % (burn 0.2), noisy, with a few short bursts to 0.2 %."""
    rng = random.Random(f"baseline-{seed}")
    good: list[int] = []
    bad: list[int] = []
    level = 0.0002
    for i in range(_minutes()):
        if i % 10 == 0:  # the error level wanders every 10 minutes, sometimes a small burst
            level = 0.0002 * rng.lognormvariate(0, 0.5) * (10 if rng.random() < 0.01 else 1)
        total = _requests(rng, PER_MINUTE)
        failed = min(total, _requests(rng, total * level))
        good.append(total - failed)
        bad.append(failed)
    return Scenario(
        name="baseline",
        summary="0.02 % errors with noise",
        good=tuple(good),
        bad=tuple(bad),
        span=(EVENTS_START, EVENTS_START + 3 * DAY),
    )


def low_traffic(seed: int) -> Scenario:
    """About 10 requests an hour; one failure 12 days back and two single failures in the span.

    Three failures in 30 days of ~7,200 requests spend 42 % of the budget (under the 50 % alert);
    no window ever holds 3 of them, so the min-bad-events guard keeps every burn rule quiet, although
    one failure among 10 requests an hour is burn 100.
    """
    rng = random.Random(f"low-traffic-{seed}")
    failures = {
        _index(EVENTS_START - 12 * DAY + 5 * HOUR + 3 * MINUTE),
        _index(EVENTS_START + 3 * HOUR + 17 * MINUTE),
        _index(EVENTS_START + 9 * HOUR + 41 * MINUTE),
    }
    good: list[int] = []
    bad: list[int] = []
    for i in range(_minutes()):
        total = _requests(rng, 10 / 60)
        failed = 1 if i in failures else 0
        good.append(total)
        bad.append(failed)
    marks = sorted(HISTORY_START + i * MINUTE for i in failures if HISTORY_START + i * MINUTE >= EVENTS_START)
    return Scenario(
        name="low-traffic",
        summary="10 req/h, single failures",
        good=tuple(good),
        bad=tuple(bad),
        span=(EVENTS_START, EVENTS_START + DAY),
        focus=tuple(marks),
        notes={f"failure_{n}": t for n, t in enumerate(marks, 1)},
    )


def source_outage(seed: int) -> Scenario:
    """No samples for 30 minutes (a scrape gap, Prometheus down); traffic as the baseline otherwise."""
    first = EVENTS_START + 2 * HOUR
    last = first + 30 * MINUTE
    good, bad = _steady("source-outage", seed, {}, 0.0002)
    # The last sample before the gap is at first - 1m, so every minute from first - 1m on is unknown
    # (a minute needs a sample at both edges). The 10m window [t - 10m, t) holds no known minute from
    # t = first + 9m, 10 minutes after that last sample. The minute starting at `last` is known once
    # the sample at last + 1m exists: the alert resolves then.
    fires = first - MINUTE + NO_DATA_AFTER
    resolves = last + MINUTE
    return Scenario(
        name="source-outage",
        summary="30-minute scrape gap",
        good=good,
        bad=bad,
        span=(first - 20 * MINUTE, last + 40 * MINUTE),
        gap=(first, last),
        wanted=frozenset({NO_DATA}),
        detect_key=NO_DATA,
        detect_theory=fires,
        problem_start=first,
        problem_end=last,
        reset_theory=resolves,
        focus=(first, last),
        notes={"gap_start": first, "gap_end": last},
    )


def generate(seed: int = 7) -> tuple[Scenario, ...]:
    return (outage(seed), slow_burn(seed), baseline(seed), low_traffic(seed), source_outage(seed))


# --- what the policy (SPEC.md) says about true counts ---------------------------------------------


def policy_transitions(
    scenario: Scenario,
    start: datetime,
    end: datetime,
    *,
    step: timedelta = MINUTE,
    min_bad_events: float = MIN_BAD_EVENTS,
) -> list[Transition]:
    """The default policy of SPEC.md run on the true counts, written from the spec, not from bot/.

    A tier holds when the burns of both windows exceed its factor and its long window holds at least
    `min_bad_events` bad events; a severity fires when any tier holds, keeps its state when no tier can
    be computed (no traffic), and resolves otherwise; a firing page freezes the ticket.
    """
    budget = 1 - TARGET
    opened: set[str] = set()
    out: list[Transition] = []
    t = start
    while t <= end:

        def burn(w: timedelta, at: datetime = t) -> tuple[float | None, float]:
            good, total, _ = scenario.counts(at - w, at)
            return (None, 0.0) if total <= 0 else ((1 - good / total) / budget, float(total - good))

        def severity(name: str) -> bool | None:
            known = holds = False
            for sev, long, short, spent in TIERS:
                if sev != name:
                    continue
                (long_burn, bad), (short_burn, _) = burn(long), burn(short)
                if long_burn is None or short_burn is None:
                    continue
                known = True
                f = factor(spent, long)
                holds = holds or (bad >= min_bad_events and long_burn > f and short_burn > f)
            return True if holds else (False if known else None)

        page = severity(PAGE)
        signals: list[tuple[str, bool | None]] = [(PAGE, page), (TICKET, None if page else severity(TICKET))]
        good, total, _ = scenario.counts(t - PERIOD, t)
        remaining = None if total <= 0 else 1 - (1 - good / total) / budget
        for threshold in BUDGET_THRESHOLDS:
            key = f"budget-{round(threshold * 100)}"
            # hysteresis: once fired, it clears only above the threshold plus the margin
            level = threshold + BUDGET_MARGIN if key in opened else threshold
            active = None if remaining is None else remaining <= level
            signals.append((key, active))
        signals.append((NO_DATA, scenario.counts(t - NO_DATA_AFTER, t)[2] == 0))
        for key, active in signals:
            if active is None or active == (key in opened):
                continue
            (opened.add if active else opened.discard)(key)
            out.append((t, key, "firing" if active else "resolved"))
        t += step
    return out


def stepping_instants(
    scenario: Scenario, transitions: Sequence[Transition], *, around: timedelta, every: timedelta
) -> list[datetime]:
    """When the scheduler path evaluates: the span's ends, every minute within `around` of each
    transition and focus instant, and every `every` in between (the bot keeps its state across)."""
    start, end = scenario.span
    marks = [*(t for t, _, _ in transitions), *scenario.focus]
    minutes = int(around / MINUTE)
    instants = {start, end}
    for mark in marks:
        instants.update(mark + k * MINUTE for k in range(-minutes, minutes + 1))
    at = start
    while at < end:
        instants.add(at)
        at += every
    return sorted(t for t in instants if start <= t <= end)


# --- Prometheus: OpenMetrics files, backfill, server ------------------------------------------------


def write_openmetrics(scenarios: Sequence[Scenario], directory: Path) -> list[Path]:
    """One file per UTC day holding every scenario's two counters; timestamps in seconds, `# EOF`."""
    directory.mkdir(parents=True, exist_ok=True)
    last_day = (_minutes() - 1) // 1440
    days: dict[int, list[str]] = {d: [] for d in range(last_day + 1)}
    for scenario in scenarios:
        rows: dict[int, list[tuple[int, int, int]]] = {d: [] for d in days}
        first = int(HISTORY_START.timestamp())
        for ts, good, bad in scenario.samples():
            rows[min((ts - first) // 86_400, last_day)].append((ts, good, bad))
        for day, samples in rows.items():
            days[day] += [f"{scenario.good_selector} {g} {ts}" for ts, g, _ in samples]
            days[day] += [f"{scenario.bad_selector} {b} {ts}" for ts, _, b in samples]
    paths = []
    for day, lines in days.items():
        path = directory / f"day-{day:02d}.om"
        header = [
            f"# HELP {FAMILY} Requests served, by scenario and status code.",
            f"# TYPE {FAMILY} counter",
        ]
        path.write_text("\n".join([*header, *lines, "# EOF"]) + "\n")
        paths.append(path)
    return paths


def backfill(scenarios: Sequence[Scenario], directory: Path) -> Path:
    """Build a TSDB at `directory` holding every scenario (promtool, one process per file)."""
    require_tools()
    work = directory.with_name(directory.name + "-openmetrics")
    files = write_openmetrics(scenarios, work)
    directory.mkdir(parents=True, exist_ok=True)

    def create_blocks(path: Path) -> Path:
        out = path.with_suffix(".blocks")
        command = ["promtool", "tsdb", "create-blocks-from", "openmetrics", "--quiet", str(path), str(out)]
        # promtool's garbage collector costs a third of its time on these small files
        env = {**os.environ, "GOGC": "off"}
        result = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
        if result.returncode != 0:
            raise HarnessError(f"promtool failed on {path}: {result.stderr.strip()[-2000:]}")
        return out

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        for out in pool.map(create_blocks, files):
            for block in out.iterdir():
                block.rename(directory / block.name)
            out.rmdir()
            (out.with_suffix(".om")).unlink()
    work.rmdir()
    return directory


@contextmanager
def serve(scenarios: Sequence[Scenario], root: Path) -> Iterator[str]:
    """A Prometheus on 127.0.0.1 serving every scenario; yields its URL, stops it at the end."""
    server = PrometheusServer(backfill(scenarios, root / "data"))
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


def catalogue(scenario: Scenario, url: str, *, name: str | None = None, annotations: str = "") -> str:
    """OpenSLO v1: a Prometheus DataSource at `url` and one 99.9 % / 30d SLO on the scenario's counters."""
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
  name: {name or scenario.name}{meta}
spec:
  service: scenarios
  indicator:
    metadata:
      name: {scenario.name}-requests
    spec:
      ratioMetric:
        counter: true
        good:
          metricSource:
            metricSourceRef: prom
            spec:
              query: '{scenario.good_selector}'
        total:
          metricSource:
            metricSourceRef: prom
            spec:
              query: '{scenario.total_selector}'
  timeWindow:
    - duration: 30d
      isRolling: true
  budgetingMethod: Occurrences
  objectives:
    - target: {TARGET}
"""


# --- the same rules as Prometheus alert expressions (Sloth style) ------------------------------------


def _error_ratio(scenario: Scenario, window: timedelta) -> str:
    w = _promql_duration(window)
    return f"(sum(increase({scenario.bad_selector}[{w}])) / sum(increase({scenario.total_selector}[{w}])))"


def _promql_duration(window: timedelta) -> str:
    for size, unit in ((DAY, "d"), (HOUR, "h"), (MINUTE, "m")):
        if window % size == timedelta(0):
            return f"{window // size}{unit}"
    raise ValueError(window)


def alert_expressions(scenario: Scenario) -> dict[str, str]:
    """PromQL per alert key: a severity fires while any of its tiers' long AND short windows burn
    above the factor; `no-data` while the counters have no sample in the last 10 minutes."""
    exprs: dict[str, str] = {}
    for severity in (PAGE, TICKET):
        tiers = [
            f"({_error_ratio(scenario, long)} > ({factor(spent, long):g} * (1 - {TARGET})) "
            f"and {_error_ratio(scenario, short)} > ({factor(spent, long):g} * (1 - {TARGET})))"
            for sev, long, short, spent in TIERS
            if sev == severity
        ]
        exprs[severity] = " or ".join(tiers)
    exprs[NO_DATA] = f"absent_over_time({scenario.total_selector}[{_promql_duration(NO_DATA_AFTER)}])"
    return exprs


def prometheus_transitions(client: httpx.Client, scenario: Scenario) -> list[Transition]:
    """Prometheus itself evaluating `alert_expressions` at a 1m step over the scenario's span:
    an alert fires at the first step its expression has a value and resolves at the first without.

    The ticket is inhibited while the page fires (Alertmanager `inhibit_rules`, as slo-bot's page
    suppresses its ticket): it shows only while its expression has a value and the page's has none.
    """
    start, end = scenario.span
    active: dict[str, set[datetime]] = {}
    for key, expr in alert_expressions(scenario).items():
        response = client.post(
            "/api/v1/query_range",
            data={"query": expr, "start": start.timestamp(), "end": end.timestamp(), "step": "60"},
        )
        response.raise_for_status()
        result = response.json()["data"]["result"]
        active[key] = {
            datetime.fromtimestamp(float(stamp), UTC) for series in result for stamp, _ in series["values"]
        }
    active[TICKET] -= active[PAGE]
    out: list[Transition] = []
    steps = [start + k * MINUTE for k in range(int((end - start) / MINUTE) + 1)]
    for key in (PAGE, TICKET, NO_DATA):
        on = False
        for t in steps:
            if (t in active[key]) != on:
                on = not on
                out.append((t, key, "firing" if on else "resolved"))
    order = {PAGE: 0, TICKET: 1, NO_DATA: 2}
    return sorted(out, key=lambda tr: (tr[0], order[tr[1]], tr[2] == "firing"))
