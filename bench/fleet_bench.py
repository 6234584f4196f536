"""Grouped SLOs across a fleet of `slo-bot run` replicas on PostgreSQL: cycle time, source queries per
tick, database size per SLO per month, RSS per replica, and how each grows with the number of SLOs.

Run from the repository root:

    .venv/bin/python bench/fleet_bench.py      # 10 x 100 then 100 x 100 SLO instances, 3 replicas, 2m ticks
    .venv/bin/python bench/fleet_bench.py --definitions 100 --members 100 --small 10 --single
    .venv/bin/python bench/fleet_bench.py --definitions 2 --members 3 --small 0 --replicas 2 --interval 10s

Each size is `--definitions` grouped SLO definitions (`slo-bot/group-by: route`) of `--members` routes
each: definition N selects `service="sN"`, so every member is a series of its own (plus a 5xx series
on every fifth route). History: per-minute counters for every route of every service from 2 hours
before the start to `--ahead` after it, backfilled with promtool (samples dated ahead of the clock
are what a scrape would have added by then, so the replicas see live data without a scraping
Prometheus). Prometheus sits behind a counting proxy. For each size (the `--small` one first), a
fresh PostgreSQL database on 127.0.0.1:5432, `slo-bot apply`, then `--replicas` real `slo-bot run`
processes (console mode, `SLO_BOT_EVAL_INTERVAL=--interval`) until the first cycle and
`--steady-ticks` more have finished; `--single` runs the big size again with one replica.
Everything it starts is stopped and removed at the end (also on Ctrl-C or SIGTERM).

Measured: the first (backfill) cycle and each steady cycle, from the tick's start until the replicas
have stored one evaluation per SLO instance (the status snapshots dated by the tick, in the database);
source queries in each (the proxy); the definitions each replica took (`slo_lease`); peak RSS per
replica (VmHWM); the tables' size per member after the steady ticks (pg_total_relation_size)
extrapolated to a month; and the machine's CPU (/proc/stat) against what the replicas and Prometheus
used, to say where the machine is the limit.
"""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import psycopg
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

from bot.scheduler import SETTLE_DELAY  # noqa: E402
from bot.store.repo import SNAPSHOT_RETENTION  # noqa: E402
from tests.dbharness import PG_ADMIN  # noqa: E402
from tests.promharness import PrometheusServer, _free_port  # noqa: E402

HISTORY = timedelta(hours=2)
HEAD = """apiVersion: openslo/v1
kind: DataSource
metadata: {name: prom}
spec: {type: Prometheus, connectionDetails: {url: "URL", timeout: 60s}}
"""
DEFINITION = """---
apiVersion: openslo/v1
kind: SLO
metadata: {name: svc-N, annotations: {slo-bot/group-by: route}}
spec:
  service: svc-N
  indicator:
    metadata: {name: svc-N-requests}
    spec:
      ratioMetric:
        counter: true
        good:
          metricSource:
            metricSourceRef: prom
            spec: {query: 'shop_requests_total{job="shop",service="sN",code!~"5.."}'}
        total:
          metricSource:
            metricSourceRef: prom
            spec: {query: 'shop_requests_total{job="shop",service="sN"}'}
  timeWindow: [{duration: WINDOW, isRolling: true}]
  budgetingMethod: Occurrences
  objectives: [{target: 0.99}]
"""
# Rows a member of a 30-day SLO keeps once a month has passed (bot/buckets.py `tiers_for`, with the
# default policy's longest window of 3 days): 1-minute buckets for 7 h, 5-minute ones up to 3 d + 1 h,
# hourly ones for the rest of the 30 days (older buckets are trimmed).
MONTH_BUCKETS = {"1m": 7 * 60, "5m": (73 - 7) * 12, "1h": 30 * 24 - 73}


def history(directory: Path, services: int, routes: int, start: datetime, end: datetime) -> Path:
    """Per-minute counters of `services` x `routes` (and a 5xx series on every fifth route)."""
    source = directory / "shop.om"
    base = int(start.timestamp())
    minutes = int((end - start).total_seconds()) // 60
    with source.open("w") as out:
        out.write("# HELP shop_requests Requests served.\n# TYPE shop_requests counter\n")
        for s in range(services):
            for r in range(routes):
                codes = [("200", 10 + r % 7)] + ([("500", 1)] if r % 5 == 0 else [])
                for code, per_minute in codes:
                    labels = f'job="shop",service="s{s}",route="/r{r}",code="{code}"'
                    out.write(
                        "".join(
                            f"shop_requests_total{{{labels}}} {k * per_minute} {base + 60 * k}\n"
                            for k in range(minutes + 1)
                        )
                    )
        out.write("# EOF\n")
    data = directory / "data"
    subprocess.run(
        ["promtool", "tsdb", "create-blocks-from", "openmetrics", "--quiet", str(source), str(data)],
        check=True,
        capture_output=True,
    )
    source.unlink()
    return data


@dataclass
class QueryLog:
    """A proxy in front of Prometheus that notes when each query arrived (hand-written: a few lines
    of the standard library's server and httpx; no package counts queries for us)."""

    upstream: str
    times: list[float] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None
    _client: httpx.Client | None = None

    def start(self) -> str:
        log = self
        client = self._client = httpx.Client(
            base_url=self.upstream, timeout=120, limits=httpx.Limits(max_connections=32)
        )

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                if self.path.startswith("/api/v1/query"):
                    with log._lock:
                        log.times.append(time.time())
                headers = {k: v for k, v in self.headers.items() if k.lower() in ("content-type", "accept")}
                answer = client.request(self.command, self.path, content=body, headers=headers)
                self.send_response(answer.status_code)
                self.send_header("Content-Type", answer.headers.get("content-type", "application/json"))
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            do_GET = do_POST = _forward

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def between(self, start: float, end: float) -> int:
        with self._lock:
            return sum(1 for t in self.times if start <= t <= end)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._client is not None:
            self._client.close()


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (and its waited-for children), from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    values = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    hz = os.sysconf("SC_CLK_TCK")
    return (sum(values) - idle) / hz, sum(values) / hz


def leases_lost(ports: Iterable[int]) -> int:
    """The leases the replicas lost (`slo_bot_leases_lost_total`), summed over the replicas."""
    lost = 0.0
    for port in ports:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=60).text
        for family in text_string_to_metric_families(text):
            if family.name == "slo_bot_leases_lost":
                lost += sum(s.value for s in family.samples if s.name.endswith("_total"))
    return int(lost)


def status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


@dataclass
class Tick:
    at: float  # the tick's boundary, unix time
    definitions_done: int = 0
    by_holder: dict[str, int] = field(default_factory=dict)
    completed: float = 0.0  # when this script first saw every definition of the tick done
    evaluations: int = 0  # status snapshots dated by this tick: members evaluated, some maybe twice
    duplicates: int = 0  # snapshots of an SLO evaluated twice in this tick


class Database:
    """A throwaway PostgreSQL database."""

    def __init__(self) -> None:
        self.name = f"slobot_fleetbench_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5) as admin:
            admin.execute(f'CREATE DATABASE "{self.name}"')
        self.url = f"{PG_ADMIN.rsplit('/', 1)[0]}/{self.name}".replace(
            "postgresql://", "postgresql+psycopg://"
        )
        self.connection = psycopg.connect(
            self.url.replace("postgresql+psycopg", "postgresql"), autocommit=True
        )

    def sql(self, query: str, *args: object) -> list[tuple[object, ...]]:
        return list(self.connection.execute(query, args).fetchall())

    def drop(self) -> None:
        self.connection.close()
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def _environment(database: str, interval: str) -> dict[str, str]:
    env = {**os.environ, "DATABASE_URL": database, "SLO_BOT_EVAL_INTERVAL": interval}
    for name in ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "SLO_BOT_CONFIG", "SLO_BOT_DEFAULT_CHANNEL"):
        env.pop(name, None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def run_fleet(
    *,
    work: Path,
    log: QueryLog,
    source_url: str,
    prometheus_pid: int,
    definitions: int,
    members: int,
    replicas: int,
    interval: str,
    interval_s: float,
    steady_ticks: int,
    timeout_s: float,
    window: str = "30d",
) -> dict[str, object]:
    """One size on a fresh database: the fleet's first cycle and `steady_ticks` more; the figures."""
    label = f"{definitions}x{members}-{replicas}r"
    start_delay = SETTLE_DELAY.total_seconds() if SETTLE_DELAY.total_seconds() < interval_s else 0.0
    catalogue = work / f"{label}.yaml"
    catalogue.write_text(
        HEAD.replace("URL", source_url)
        + "".join(
            DEFINITION.replace("svc-N", f"svc-{n}").replace("sN", f"s{n}").replace("WINDOW", window)
            for n in range(definitions)
        )
    )
    database = Database()
    processes: dict[str, subprocess.Popen[bytes]] = {}
    ports: dict[str, int] = {}
    logs: dict[str, Path] = {}
    try:
        env = _environment(database.url, interval)
        applied = subprocess.run(
            [sys.executable, "-m", "bot", "apply", str(catalogue)], env=env, capture_output=True, text=True
        )
        if applied.returncode != 0:
            raise SystemExit(f"apply failed: {applied.stderr[-2000:]}")
        started = time.time()
        for i in range(replicas):
            name = "abcdefghij"[i] if i < 10 else f"r{i}"
            logs[name] = work / f"{label}-{name}.log"
            ports[name] = _free_port()
            with logs[name].open("wb") as out:
                processes[name] = subprocess.Popen(
                    [sys.executable, "-m", "bot", "run", "--port", str(ports[name])],
                    env={**env, "SLO_BOT_REPLICA": name},
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
        ticks: dict[float, Tick] = {}
        samples: list[tuple[float, float, float, dict[str, float]]] = []  # at, machine busy, total, cpu
        deadline = time.monotonic() + timeout_s
        first_lost: int | None = None  # the leases lost in the first cycle
        first_peaks: dict[str, float] = {}  # peak RSS per replica by the first cycle's end
        while True:
            for name, process in processes.items():
                if process.poll() is not None:
                    raise SystemExit(
                        f"replica {name} exited {process.returncode}: {logs[name].read_text()[-3000:]}"
                    )
            rows = database.sql(
                "SELECT extract(epoch FROM l.tick), l.holder, count(*), count(l.done_at), "
                "0 FROM slo_lease l JOIN slo s ON s.id = l.slo_id "
                "WHERE s.group_id IS NULL AND l.tick IS NOT NULL GROUP BY 1, 2"
            )
            for at, holder, _taken, done, _ in rows:
                tick = ticks.setdefault(float(at), Tick(float(at)))
                # a replica done with this tick may already take the next one's rows: keep the most seen
                seen = tick.by_holder.get(str(holder), 0)
                tick.by_holder[str(holder)] = max(seen, int(done))
                tick.definitions_done = sum(tick.by_holder.values())
            # A definition's lease is done when its members start to be stored (and done_at is the
            # tick's time, not the clock's): the k-th tick has finished when its status snapshots
            # (one per member evaluated, written with its commit, dated by the replica's clock when
            # its tick began: `bot.fleet.tick_of` gives the tick) number the SLO instances. (A lease
            # lost in a slow tick moves its SLO to the next tick: then the snapshots, not the lease
            # table, say when a tick is over.) Counted in the database: the replicas' /metrics
            # (every SLO's gauges, 7 MB each at 10,000 SLOs) cost them and this script seconds of
            # CPU a scrape, so they are read twice only, for the leases lost.
            stored = {
                int(at): (int(n), int(distinct))
                for at, n, distinct in database.sql(
                    "SELECT floor(extract(epoch FROM evaluated_at) / %s)::bigint, count(*), "
                    "count(DISTINCT slo_id) FROM status_snapshot GROUP BY 1",
                    interval_s,
                )
            }
            for tick in [t for _, t in sorted(ticks.items())]:
                if tick.completed:
                    continue
                n, distinct = stored.get(round(tick.at / interval_s), (0, 0))
                if distinct < definitions * members:
                    break
                tick.completed, tick.evaluations, tick.duplicates = time.time(), n, n - distinct
                if first_lost is None:
                    first_lost = leases_lost(ports.values())
                    first_peaks = {name: status_kb(p.pid, "VmHWM") / 1024 for name, p in processes.items()}
            busy, total = machine_busy()
            cpus = {name: cpu_seconds(p.pid) for name, p in processes.items()}
            cpus["prometheus"] = cpu_seconds(prometheus_pid)
            samples.append((time.time(), busy, total, cpus))
            complete = [t for _, t in sorted(ticks.items()) if t.completed]
            if len(complete) >= steady_ticks + 1:
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"{label}: timed out; ticks so far {sorted(ticks.items())}")
            time.sleep(0.5)
        peaks = {name: status_kb(p.pid, "VmHWM") / 1024 for name, p in processes.items()}
        first, steady = complete[0], complete[1 : steady_ticks + 1]
        # a tick starts SETTLE_DELAY after its boundary (bot/scheduler.py), or when the tick before
        # it ended if that one ran past the boundary
        begins = [max(t.at + start_delay, before.completed) for before, t in itertools.pairwise(complete)]
        figures: dict[str, object] = {
            "label": label,
            "instances": definitions * members,
            "definitions": definitions,
            "per_definition": members,
            "replicas": replicas,
            "first_cycle_s": first.completed - started,
            "first_queries": log.between(started, first.completed),
            "steady_cycle_s": [t.completed - begun for t, begun in zip(steady, begins, strict=True)],
            "steady_queries": [
                log.between(begun, t.completed) for t, begun in zip(steady, begins, strict=True)
            ],
            "steady_shares": [dict(t.by_holder) for t in steady],
            "skipped_ticks": _skipped(first.at, [t.at for t in steady], interval_s),
            "peak_rss_mb": peaks,
            "first_peak_rss_mb": first_peaks,
        }
        assert first_lost is not None
        figures["leases_lost"] = [first_lost, leases_lost(ports.values()) - first_lost]
        figures.update(_cpu(samples, steady[0].at, steady[-1].completed, len(steady)))
        members_now = database.sql("SELECT count(*) FROM slo WHERE group_id IS NOT NULL")[0][0]
        figures["members"] = int(members_now)
        evaluated = database.sql(
            "SELECT count(DISTINCT n.slo_id), count(*) FROM status_snapshot n JOIN slo s ON s.id = n.slo_id "
            "WHERE s.group_id IS NOT NULL AND n.evaluated_at >= to_timestamp(%s)",
            steady[-1].at,  # a snapshot is dated by its replica's clock as its tick began
        )[0]
        figures["steady_members_evaluated"] = int(evaluated[0])
        figures["steady_evaluations"] = sum(t.evaluations for t in steady)
        # each member once a tick: a second snapshot of a member in a tick is an SLO evaluated twice
        figures["duplicate_evaluations"] = sum(t.duplicates for t in steady)
        for process in processes.values():
            process.send_signal(signal.SIGTERM)
        for process in processes.values():
            try:
                process.wait(timeout=120)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        figures["exit_codes"] = {name: p.returncode for name, p in processes.items()}
        figures["log_problems"] = {
            name: [line for line in path.read_text(errors="replace").splitlines() if _problem(line)][:5]
            for name, path in logs.items()
        }
        figures.update(_storage(database, int(members_now), interval_s))
        return figures
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
                process.wait()
        database.drop()


def _problem(line: str) -> bool:
    return any(word in line for word in ("Traceback", "ERROR", "CRITICAL", "lease lost", "expired"))


def _skipped(first: float, steady: list[float], interval_s: float) -> int:
    """Boundaries no tick started on (a tick longer than the interval makes the next one wait)."""
    ats = [first, *steady]
    return sum(round((b - a) / interval_s) - 1 for a, b in itertools.pairwise(ats))


def _cpu(
    samples: list[tuple[float, float, float, dict[str, float]]], start: float, end: float, ticks: int
) -> dict[str, object]:
    inside = [s for s in samples if start <= s[0] <= end] or samples[-2:]
    a, b = inside[0], inside[-1]
    wall = max(b[0] - a[0], 1e-9)
    replicas = sum(b[3][k] - a[3][k] for k in b[3] if k != "prometheus")
    return {
        "machine_busy_ratio": (b[1] - a[1]) / max(b[2] - a[2], 1e-9),
        "replicas_cpu_per_tick_s": replicas / ticks,
        "prometheus_cpu_per_tick_s": (b[3]["prometheus"] - a[3]["prometheus"]) / ticks,
        "other_cpu_per_tick_s": ((b[1] - a[1]) - replicas - (b[3]["prometheus"] - a[3]["prometheus"]))
        / ticks,
        "cpu_window_s": wall,
    }


def _storage(database: Database, members: int, interval_s: float) -> dict[str, object]:
    """Bytes per member now, and what a month of a 30-day SLO comes to (see MONTH_BUCKETS)."""
    database.connection.execute("VACUUM ANALYZE")  # pg_total_relation_size counts dead rows' pages until then
    sizes = {
        str(name): (int(size), int(rows))
        for name, size, rows in database.sql(
            "SELECT c.relname, pg_total_relation_size(c.oid), c.reltuples::bigint FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind = 'r'"
        )
    }
    buckets = int(database.sql("SELECT count(*) FROM bucket")[0][0])
    snapshots = int(database.sql("SELECT count(*) FROM status_snapshot")[0][0])
    bucket_row = sizes["bucket"][0] / max(buckets, 1)
    snapshot_row = sizes["status_snapshot"][0] / max(snapshots, 1)
    other = sum(size for name, (size, _) in sizes.items() if name not in ("bucket", "status_snapshot"))
    month_buckets = sum(MONTH_BUCKETS.values())
    month_snapshots = int(SNAPSHOT_RETENTION.total_seconds() // 60) + 1  # at one evaluation a minute
    month = month_buckets * bucket_row + month_snapshots * snapshot_row + other / members
    return {
        "db_bytes_now": sum(size for size, _ in sizes.values()),
        "bucket_rows_per_member": buckets / members,
        "bucket_row_bytes": bucket_row,
        "snapshot_rows_per_member": snapshots / members,
        "snapshot_row_bytes": snapshot_row,
        "other_bytes_per_member": other / members,
        "month_bytes_per_member": month,
        "month_buckets": month_buckets,
        "month_snapshots": month_snapshots,
    }


def _interval_seconds(text: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600}
    return float(text[:-1]) * units[text[-1]]


def report(runs: list[dict[str, object]], interval: str) -> str:
    def cycle(values: object) -> str:
        assert isinstance(values, list)
        return f"{statistics.median(values):.1f} s ({min(values):.1f}-{max(values):.1f})"

    def per_tick(values: object) -> str:
        assert isinstance(values, list)
        return f"{statistics.median(values):.0f}"

    rows = [
        (
            "SLO instances (definitions x members, replicas)",
            lambda r: f"{r['instances']:,} ({r['definitions']} x {r['per_definition']}, {r['replicas']})",
        ),
        ("first cycle (backfill): seconds", lambda r: f"{r['first_cycle_s']:.1f} s"),
        ("first cycle: source queries", lambda r: f"{r['first_queries']}"),
        ("steady cycle: median (min-max)", lambda r: cycle(r["steady_cycle_s"])),
        ("steady: source queries per tick", lambda r: per_tick(r["steady_queries"])),
        (
            "steady: definitions per replica",
            lambda r: " / ".join(str(s) for s in r["steady_shares"][0].values()),
        ),
        ("ticks skipped (cycle > interval)", lambda r: str(r["skipped_ticks"])),
        ("members evaluated per steady tick", lambda r: _evaluated(r)),
        ("duplicate evaluations", lambda r: str(r["duplicate_evaluations"])),
        ("leases lost: first cycle / steady", lambda r: " / ".join(str(n) for n in r["leases_lost"])),
        (
            "peak RSS per replica (VmHWM)",
            lambda r: " / ".join(f"{v:.0f}" for v in r["peak_rss_mb"].values()) + " MB",
        ),
        (
            "  of it by the first cycle's end",
            lambda r: " / ".join(f"{v:.0f}" for v in r["first_peak_rss_mb"].values()) + " MB",
        ),
        ("DB now: total", lambda r: f"{int(r['db_bytes_now']) / 2**20:.1f} MB"),
        (
            "DB: bucket rows per member now",
            lambda r: f"{r['bucket_rows_per_member']:.0f} x {r['bucket_row_bytes']:.0f} B",
        ),
        (
            "DB: snapshot rows per member now",
            lambda r: f"{r['snapshot_rows_per_member']:.1f} x {r['snapshot_row_bytes']:.0f} B",
        ),
        ("DB: other tables per member", lambda r: f"{r['other_bytes_per_member']:.0f} B"),
        ("DB per SLO per month (see below)", lambda r: f"{float(r['month_bytes_per_member']) / 1024:.0f} KB"),
        ("CPU busy, whole machine, steady", lambda r: f"{float(r['machine_busy_ratio']) * 100:.0f} %"),
        (
            "CPU s per tick: replicas / Prometheus / rest",
            lambda r: " / ".join(
                f"{float(r[k]):.1f}"
                for k in ("replicas_cpu_per_tick_s", "prometheus_cpu_per_tick_s", "other_cpu_per_tick_s")
            ),
        ),
        ("exit codes after SIGTERM", lambda r: " ".join(f"{k}={v}" for k, v in r["exit_codes"].items())),
    ]
    width = max(len(name) for name, _ in rows)
    lines = [f"interval {interval}; load average {os.getloadavg()[0]:.1f} at the end"]
    lines.append(" " * width + "  " + "  ".join(str(r["label"]).ljust(28) for r in runs))
    for name, value in rows:
        lines.append(name.ljust(width) + "  " + "  ".join(value(r).ljust(28) for r in runs))
    small, big = runs[0], runs[-1]
    if len(runs) > 1 and big["instances"] != small["instances"]:
        grow = int(big["instances"]) / int(small["instances"])
        lines.append(f"\ngrowth from {small['label']} to {big['label']} ({grow:.0f}x the SLO instances):")
        pairs = [
            ("first cycle", small["first_cycle_s"], big["first_cycle_s"]),
            (
                "steady cycle",
                statistics.median(small["steady_cycle_s"]),
                statistics.median(big["steady_cycle_s"]),
            ),
            (
                "queries per tick",
                statistics.median(small["steady_queries"]),
                statistics.median(big["steady_queries"]),
            ),
            ("DB per SLO per month", small["month_bytes_per_member"], big["month_bytes_per_member"]),
            ("peak RSS per replica", max(small["peak_rss_mb"].values()), max(big["peak_rss_mb"].values())),
            ("replicas' CPU per tick", small["replicas_cpu_per_tick_s"], big["replicas_cpu_per_tick_s"]),
        ]
        for name, a, b in pairs:
            lines.append(
                f"  {name}: {float(a):.3g} -> {float(b):.3g}  ({float(b) / max(float(a), 1e-9):.2f}x)"
            )
    lines.append(
        "\nDB per SLO per month: a 30-day SLO's member keeps at most "
        + " + ".join(f"{n} {k}" for k, n in MONTH_BUCKETS.items())
        + f" = {big['month_buckets']} bucket rows (bot/buckets.py tiers; older ones are trimmed) x the "
        "measured bytes per bucket row (table and indexes / rows), plus "
        f"{big['month_snapshots']} status snapshots (kept {SNAPSHOT_RETENTION}, at one evaluation a "
        "minute) x the measured bytes per snapshot row, plus its share of every other table. The "
        "history here is short, so the rows now are fewer; bytes per row are what grows to a month."
    )
    lines.append(_limit(big))
    return "\n".join(lines)


def _evaluated(r: dict[str, object]) -> str:
    ticks = len(r["steady_cycle_s"])
    per_tick = int(r["steady_evaluations"]) / ticks
    return f"{r['steady_members_evaluated']} of {r['members']} ({per_tick:.0f} a tick)"


def _limit(r: dict[str, object]) -> str:
    busy = float(r["machine_busy_ratio"])
    replicas = float(r["replicas_cpu_per_tick_s"])
    prometheus = float(r["prometheus_cpu_per_tick_s"])
    rest = float(r["other_cpu_per_tick_s"])
    cycle = statistics.median(r["steady_cycle_s"])
    instances = int(r["instances"])
    cores = os.cpu_count() or 1
    return (
        f"\nWhere this machine is the limit ({cores} cores shared by Prometheus, PostgreSQL, "
        f"{r['replicas']} replicas and anything else running): from the first steady tick of "
        f"{r['label']} to the end of the last the machine was {busy * 100:.0f} % busy. Per tick (idle "
        f"time between ticks included) the replicas used {replicas:.1f} CPU-seconds, "
        f"{replicas / instances * 1000:.1f} ms per SLO instance; Prometheus {prometheus:.1f}; "
        f"everything else (PostgreSQL, the proxy, other processes) {rest:.1f}. Alone on the {cores} "
        f"cores the replicas' own work would take at least {replicas / cores:.1f} s a tick; the cycle "
        f"took {cycle:.1f} s. Prometheus is not the limit: the replicas' work per SLO instance (its "
        "store step: buckets, windows, signals, snapshot, in transactions of many; here also the "
        "burn-down chart of each breach the first cycle opened, drawn in the steady ticks' time) "
        "and PostgreSQL serving it share the cores, so a shorter cycle takes more cores or "
        "machines, not more replicas on these."
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--definitions", type=int, default=100)
    parser.add_argument("--members", type=int, default=100)
    parser.add_argument(
        "--small", type=int, default=10, help="definitions of the first, smaller size (0: none)"
    )
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--single", action="store_true", help="the big size again with one replica")
    parser.add_argument("--interval", default="2m", help="SLO_BOT_EVAL_INTERVAL of the replicas")
    parser.add_argument("--steady-ticks", type=int, default=3)
    parser.add_argument(
        "--window",
        default="30d",
        help="the SLOs' window (the first cycle stores empty buckets for all of it)",
    )
    parser.add_argument("--ahead", default="90m", help="history dated ahead of the start (live data)")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per size at most")
    args = parser.parse_args(argv)
    # SIGTERM as Ctrl-C: the `finally` blocks stop the replicas and Prometheus and drop the databases
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    interval_s = _interval_seconds(args.interval)
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    work = Path(tempfile.mkdtemp(prefix="slo-bot-fleet-bench-"))
    try:
        started = time.monotonic()
        data = history(
            work,
            args.definitions,
            args.members,
            now - HISTORY,
            now + timedelta(seconds=_interval_seconds(args.ahead)),
        )
        series = args.definitions * args.members * 6 // 5
        print(
            f"{series:,} series backfilled ({HISTORY} back, {args.ahead} ahead) in "
            f"{time.monotonic() - started:.1f} s",
            file=sys.stderr,
        )
        with PrometheusServer(data) as server:
            log = QueryLog(server.url)
            source_url = log.start()
            assert server._process is not None
            sizes = [(args.small, args.replicas)] if args.small else []
            sizes.append((args.definitions, args.replicas))
            if args.single:
                sizes.append((args.definitions, 1))
            runs = []
            try:
                for definitions, replicas in sizes:
                    print(
                        f"running {definitions} x {args.members} on {replicas} replica(s)...", file=sys.stderr
                    )
                    runs.append(
                        run_fleet(
                            work=work,
                            log=log,
                            source_url=source_url,
                            prometheus_pid=server._process.pid,
                            definitions=definitions,
                            members=args.members,
                            replicas=replicas,
                            interval=args.interval,
                            interval_s=interval_s,
                            steady_ticks=args.steady_ticks,
                            timeout_s=args.timeout,
                            window=args.window,
                        )
                    )
            finally:
                log.stop()
        print(report(runs, args.interval))
        problems = {r["label"]: r["log_problems"] for r in runs if any(r["log_problems"].values())}
        if problems:
            print(f"\nproblems in the replicas' logs: {problems}")
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
