"""A real Prometheus for integration tests: a seeded service history with known true counts,
backfilled into a TSDB with `promtool`, served by a `prometheus` process on a free local port.
"""

from __future__ import annotations

import math
import os
import random
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path
from types import TracebackType

import httpx

MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
FAMILY = "http_requests"  # OpenMetrics: the counter family is named without `_total`
GOOD_LABELS = '{job="api",code="200"}'
BAD_LABELS = '{job="api",code="500"}'

QUIET_PER_MINUTE = 20.0  # around 03:00 UTC
BUSY_PER_MINUTE = 2_000.0  # around 15:00 UTC
BACKGROUND_ERROR_RATIO = 0.0003
PAST_INCIDENT_ERROR_RATIO = 0.20
ONGOING_INCIDENT_ERROR_RATIO = 0.05


class HarnessError(RuntimeError):
    """The harness could not build or start Prometheus; the message says what to install or read."""


def default_end(now: datetime | None = None) -> datetime:
    """A minute-aligned end a few minutes before now, so checks "as of now" see the history."""
    now = now or datetime.now(UTC)
    return now.replace(second=0, microsecond=0) - 5 * MINUTE


@dataclass(frozen=True)
class History:
    """Per-minute true counts of one service, and the incidents, gap and counter reset in them.

    Minute `i` covers [start + i min, start + (i+1) min); the counter samples at its end include it,
    so Prometheus's `increase(...[1m])` at `t` measures the minute starting at `t - 1m`.
    """

    start: datetime
    end: datetime
    seed: int
    good_counts: tuple[int, ...]
    bad_counts: tuple[int, ...]
    past_incident: tuple[datetime, datetime]  # [from, to): 20 % errors, 03:00 UTC within 12h of -3d
    ongoing_incident: tuple[datetime, datetime]  # the last 20 minutes: 5 % errors
    gap: tuple[datetime, datetime]  # no samples at any time in [from, to)
    reset_at: datetime  # first sample after the restart: the counters restarted at reset_at - 1m

    good_selector = f"{FAMILY}_total{GOOD_LABELS}"
    bad_selector = f"{FAMILY}_total{BAD_LABELS}"
    total_selector = f'{FAMILY}_total{{job="api"}}'

    @classmethod
    def generate(cls, *, end: datetime | None = None, days: int = 32, seed: int = 1) -> History:
        end = end or default_end()
        if end.utcoffset() != timedelta(0) or end.second or end.microsecond:
            raise ValueError("end must be a minute-aligned UTC datetime")
        start = end - days * DAY
        # The past incident hits the quiet night nearest to 3 days ago: few events, a big ratio,
        # so averaging per-minute ratios overstates it many times over.
        target = end - 3 * DAY
        night = min(
            (target.replace(hour=3, minute=0) + k * DAY for k in (-1, 0, 1)),
            key=lambda t: abs(t - target),
        )
        past = (night, night + 45 * MINUTE)
        ongoing = (end - 20 * MINUTE, end)
        rng = random.Random(seed)
        good: list[int] = []
        bad: list[int] = []
        for i in range(days * 1440):
            minute = start + i * MINUTE
            hour = minute.hour + minute.minute / 60
            shape = (1 - math.cos(2 * math.pi * (hour - 3) / 24)) / 2
            rate = QUIET_PER_MINUTE + (BUSY_PER_MINUTE - QUIET_PER_MINUTE) * shape**1.5
            total = _poisson(rng, rate * max(0.5, rng.gauss(1.0, 0.1)))
            ratio = BACKGROUND_ERROR_RATIO
            if past[0] <= minute < past[1]:
                ratio = PAST_INCIDENT_ERROR_RATIO
            elif ongoing[0] <= minute < ongoing[1]:
                ratio = ONGOING_INCIDENT_ERROR_RATIO
            errors = _binomial(rng, total, ratio)
            good.append(total - errors)
            bad.append(errors)
        return cls(
            start=start,
            end=end,
            seed=seed,
            good_counts=tuple(good),
            bad_counts=tuple(bad),
            past_incident=past,
            ongoing_incident=ongoing,
            gap=(end - 2 * DAY, end - 2 * DAY + 30 * MINUTE),
            reset_at=end - 5 * DAY,
        )

    @cached_property
    def gap_minutes(self) -> frozenset[datetime]:
        """Starts of the minutes whose count is unknown: a sample is missing at either edge."""
        first, last = self.gap
        return frozenset(first - MINUTE + i * MINUTE for i in range(int((last - first) / MINUTE) + 1))

    def good(self, a: datetime, b: datetime) -> int:
        """True good events in [a, b), unknown (gap) minutes left out.

        This is what Prometheus gives at a 1m step. At coarser steps a bucket that holds the whole
        gap counts the gap's events too (the counter kept counting), and one with an edge in the
        gap is extrapolated by Prometheus: compare those only loosely.
        """
        return self._sum(self._good_prefix, a, b)

    def bad(self, a: datetime, b: datetime) -> int:
        return self._sum(self._bad_prefix, a, b)

    def total(self, a: datetime, b: datetime) -> int:
        return self.good(a, b) + self.bad(a, b)

    def known_minutes(self, a: datetime, b: datetime) -> int:
        """Minutes in [a, b) whose counts Prometheus can measure."""
        return int((b - a) / MINUTE) - sum(1 for m in self.gap_minutes if a <= m < b)

    def minute_starts(self, a: datetime, b: datetime) -> list[datetime]:
        return [a + i * MINUTE for i in range(int((b - a) / MINUTE))]

    def _sum(self, prefix: tuple[int, ...], a: datetime, b: datetime) -> int:
        for t in (a, b):
            if t.second or t.microsecond or not self.start <= t <= self.end:
                raise ValueError(f"{t} is not a minute boundary within the history")
        return prefix[self._index(b)] - prefix[self._index(a)] if a < b else 0

    def _index(self, t: datetime) -> int:
        return int((t - self.start) / MINUTE)

    def _prefix(self, counts: tuple[int, ...]) -> tuple[int, ...]:
        known = [0]
        for i, count in enumerate(counts):
            unknown = self.start + i * MINUTE in self.gap_minutes
            known.append(known[-1] + (0 if unknown else count))
        return tuple(known)

    @cached_property
    def _good_prefix(self) -> tuple[int, ...]:
        return self._prefix(self.good_counts)

    @cached_property
    def _bad_prefix(self) -> tuple[int, ...]:
        return self._prefix(self.bad_counts)

    def samples(self) -> Iterator[tuple[datetime, int, int]]:
        """(time, good counter, bad counter) once a minute from start to end, minus the gap."""
        restart = self._index(self.reset_at) - 1
        good_value, bad_value = 1_234_567, 321  # the process was up before the history starts
        for k in range(len(self.good_counts) + 1):
            if k == restart + 1:
                good_value, bad_value = self.good_counts[restart], self.bad_counts[restart]
            elif k:
                good_value += self.good_counts[k - 1]
                bad_value += self.bad_counts[k - 1]
            t = self.start + k * MINUTE
            if not self.gap[0] <= t < self.gap[1]:
                yield t, good_value, bad_value

    def write_openmetrics(self, directory: Path, *, since: datetime | None = None) -> list[Path]:
        """One OpenMetrics file per day of samples at or after `since` (default: all)."""
        directory.mkdir(parents=True, exist_ok=True)
        days: dict[int, list[tuple[int, int, int]]] = {}
        for t, good_value, bad_value in self.samples():
            if since is None or t >= since:
                day = min((t - self.start) // DAY, (self.end - self.start) // DAY - 1)  # end: last day
                days.setdefault(day, []).append((int(t.timestamp()), good_value, bad_value))
        paths = []
        for day, rows in sorted(days.items()):
            lines = [
                f"# HELP {FAMILY} Requests served, by status code.",
                f"# TYPE {FAMILY} counter",
            ]
            # Each series' samples together, in time order; timestamps in seconds.
            lines += [f"{FAMILY}_total{GOOD_LABELS} {g} {ts}" for ts, g, _ in rows]
            lines += [f"{FAMILY}_total{BAD_LABELS} {b} {ts}" for ts, _, b in rows]
            lines.append("# EOF")
            path = directory / f"day-{day:02d}.om"
            path.write_text("\n".join(lines) + "\n")
            paths.append(path)
        return paths


def tools_problem() -> str:
    """Why the harness cannot run here, or "" when `prometheus` and `promtool` are installed."""
    missing = [tool for tool in ("prometheus", "promtool") if shutil.which(tool) is None]
    if not missing:
        return ""
    return (
        f"{' and '.join(missing)} not found on PATH: the integration tests need a real "
        "Prometheus; install it with `apt-get install -y --no-install-recommends prometheus`"
    )


def require_tools() -> None:
    problem = tools_problem()
    if problem:
        raise HarnessError(problem)


def build_tsdb(history: History, directory: Path, *, since: datetime | None = None, workers: int = 0) -> Path:
    """Backfill `history` (samples at or after `since`) into a TSDB at `directory`."""
    require_tools()
    work = directory.with_name(directory.name + "-openmetrics")
    files = history.write_openmetrics(work, since=since)
    directory.mkdir(parents=True, exist_ok=True)

    def create_blocks(path: Path) -> Path:
        # One output directory per file: promtool runs in parallel, blocks are moved in after.
        out = path.with_suffix(".blocks")
        result = subprocess.run(
            [
                "promtool",
                "tsdb",
                "create-blocks-from",
                "openmetrics",
                "--quiet",
                str(path),
                str(out),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise HarnessError(f"promtool failed on {path}: {result.stderr.strip()[-2000:]}")
        return out

    with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 2) as pool:
        for out in pool.map(create_blocks, files):
            for block in out.iterdir():
                block.rename(directory / block.name)
            out.rmdir()
    shutil.rmtree(work)
    return directory


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class PrometheusServer:
    """A `prometheus` process serving the TSDB at `data` (scraping nothing unless `config` says so);
    a context manager."""

    def __init__(self, data: Path, *, retention: str = "3650d", config: str | None = None) -> None:
        self.data = data
        self.retention = retention
        self.config = config or "global:\n  scrape_interval: 1m\nscrape_configs: []\n"
        self.url = ""
        self._process: subprocess.Popen[bytes] | None = None
        self._log_path = data.with_name(data.name + "-prometheus.log")
        self._config = data.with_name(data.name + "-prometheus.yml")

    def start(self, timeout: float = 30.0) -> str:
        require_tools()
        self._config.write_text(self.config)
        for _attempt in range(3):  # another process may take the free port before prometheus does
            port = _free_port()
            with self._log_path.open("wb") as log:
                self._process = subprocess.Popen(
                    [
                        "prometheus",
                        f"--config.file={self._config}",
                        f"--storage.tsdb.path={self.data}",
                        f"--storage.tsdb.retention.time={self.retention}",
                        f"--web.listen-address=127.0.0.1:{port}",
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                )
            self.url = f"http://127.0.0.1:{port}"
            if self._wait_ready(timeout):
                return self.url
            self.stop()
            if "address already in use" not in self._log():
                break
        raise HarnessError(f"prometheus did not become ready; its log:\n{self._log()[-3000:]}")

    def _wait_ready(self, timeout: float) -> bool:
        assert self._process is not None
        deadline = time.monotonic() + timeout
        with httpx.Client(base_url=self.url, timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self._process.poll() is not None:
                    return False
                try:
                    if client.get("/-/ready").status_code == 200:
                        return True
                except httpx.TransportError:
                    pass
                time.sleep(0.05)
        return False

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def _log(self) -> str:
        return self._log_path.read_text(errors="replace") if self._log_path.exists() else ""

    def __enter__(self) -> PrometheusServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _poisson(rng: random.Random, mean: float) -> int:
    if mean <= 0:
        return 0
    if mean > 50:  # the normal approximation is good here and cheap
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, k, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        k += 1
        product *= rng.random()
    return k


def _binomial(rng: random.Random, n: int, p: float) -> int:
    mean = n * p
    if mean < 30:
        return min(n, _poisson(rng, mean))
    return min(n, max(0, round(rng.gauss(mean, math.sqrt(mean * (1 - p))))))
