"""Benchmark `slo-bot check` on many SLOs against a real local Prometheus, with a bare-HTTP baseline.

Run from the repository root:  .venv/bin/python bench/check_bench.py [--slos 1000] [--database sqlite]

What it does, all on 127.0.0.1 and in one temp dir removed at the end:
1. generates 31 days of per-minute history (tests/promharness.py), backfills it with promtool and
   starts a Prometheus on it;
2. writes an OpenSLO catalogue of N SLOs reading that Prometheus;
3. runs `check` twice in-process on a throwaway database (first = 30-day backfill, then one minute
   later = steady state), untimed, recording every HTTP request it sends;
4. runs `slo-bot apply` and `slo-bot check` twice (now, and again in the next minute: `check --at`
   is read-only and stores nothing) as subprocesses on a fresh database:
   wall seconds and peak RSS (wait4 rusage of the child);
5. replays each recorded request set with one httpx.Client and a thread pool of the same concurrency
   (read + json.loads every body): the bare baseline of each check;
6. counts rows and bytes stored per SLO.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import json
import os
import pstats
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.promharness import (  # noqa: E402  (the repo root must be on sys.path first)
    DAY,
    MINUTE,
    History,
    PrometheusServer,
    build_tsdb,
    require_tools,
)

VENV_BIN = Path(sys.executable).parent
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
PG_ADMIN_DEFAULT = "postgresql://postgres@127.0.0.1:5432/postgres"

RATIO_TARGET = 1.3
RSS_TARGET_MB = 200.0

OBJECTIVES = (0.99, 0.995, 0.999, 0.9995)
WINDOWS = (("30d", 30), ("28d", 28))
GOOD = 'http_requests_total{job="api",code!~"5.."}'
BAD = 'http_requests_total{job="api",code=~"5.."}'
TOTAL = 'http_requests_total{job="api"}'


def windowed(selector: str) -> str:
    return f"sum(increase({selector}[{{{{window}}}}]))"


# (name, role of the first metric, first query, total query): bare counters and {{window}} queries
INDICATOR_FORMS = (
    ("good-total-bare", "good", GOOD, TOTAL),
    ("bad-total-bare", "bad", BAD, TOTAL),
    ("good-total-window", "good", windowed(GOOD), windowed(TOTAL)),
    ("bad-total-window", "bad", windowed(BAD), windowed(TOTAL)),
)


# --- catalogue -------------------------------------------------------------------------------------


def catalogue(url: str, count: int) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """OpenSLO documents for `count` SLOs, and each SLO's window in days."""

    def metric(query: str) -> dict[str, Any]:
        return {"metricSource": {"metricSourceRef": "bench-prometheus", "spec": {"query": query}}}

    def ratio(role: str, first: str, total: str) -> dict[str, Any]:
        return {"ratioMetric": {"counter": True, role: metric(first), "total": metric(total)}}

    docs: list[dict[str, Any]] = [
        {
            "apiVersion": "openslo/v1",
            "kind": "DataSource",
            "metadata": {"name": "bench-prometheus"},
            "spec": {"type": "Prometheus", "connectionDetails": {"url": url}},
        }
    ]
    services = [f"svc-{k:02d}" for k in range(20)]
    docs += [
        {"apiVersion": "openslo/v1", "kind": "Service", "metadata": {"name": s}, "spec": {}} for s in services
    ]
    docs += [
        {"apiVersion": "openslo/v1", "kind": "SLI", "metadata": {"name": f"sli-{name}"}, "spec": ratio(*rest)}
        for name, *rest in INDICATOR_FORMS
    ]
    days: dict[str, int] = {}
    for i in range(count):
        objective = OBJECTIVES[i % len(OBJECTIVES)]
        window, window_days = WINDOWS[(i // len(OBJECTIVES)) % len(WINDOWS)]
        form = INDICATOR_FORMS[(i // 8) % len(INDICATOR_FORMS)]
        name = f"slo-{i:05d}"
        spec: dict[str, Any] = {
            "service": services[i % len(services)],
            "timeWindow": [{"duration": window, "isRolling": True}],
            "budgetingMethod": "Occurrences",
            "objectives": [{"target": objective}],
        }
        if (i // 32) % 2:  # half inline, half by reference
            spec["indicator"] = {"metadata": {"name": f"{name}-sli"}, "spec": ratio(*form[1:])}
        else:
            spec["indicatorRef"] = f"sli-{form[0]}"
        docs.append({"apiVersion": "openslo/v1", "kind": "SLO", "metadata": {"name": name}, "spec": spec})
        days[name] = window_days
    return docs, days


# --- databases -------------------------------------------------------------------------------------


@contextlib.contextmanager
def databases(kind: str, tmp: Path, pg_admin: str) -> Iterator[tuple[str, str]]:
    """(capture URL, measured URL): two fresh databases, dropped afterwards."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp / 'capture.db'}", f"sqlite:///{tmp / 'measured.db'}"
        return
    import psycopg

    host = urlsplit(pg_admin).hostname
    if host not in LOOPBACK:
        raise SystemExit(f"--pg-admin must point at 127.0.0.1, not {host!r}")
    names = [f"slobot_bench_{uuid.uuid4().hex[:10]}" for _ in range(2)]
    with psycopg.connect(pg_admin, autocommit=True, connect_timeout=5) as admin:
        for name in names:
            admin.execute(f'CREATE DATABASE "{name}"')
    base = pg_admin.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    try:
        yield f"{base}/{names[0]}", f"{base}/{names[1]}"
    finally:
        with psycopg.connect(pg_admin, autocommit=True, connect_timeout=5) as admin:
            for name in names:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- in-process capture (untimed) ------------------------------------------------------------------


@dataclass(frozen=True)
class Recorded:
    method: str
    url: str
    headers: tuple[tuple[str, str], ...]
    body: bytes


class Capture:
    """Records every request any httpx.Client sends while active; optionally profiles the check."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        original = httpx.Client.send
        capture = self

        def send(client: httpx.Client, request: httpx.Request, **kwargs: Any) -> httpx.Response:
            body = request.read()
            headers = tuple(
                (k, v) for k, v in request.headers.items() if k.lower() not in ("host", "content-length")
            )
            with capture._lock:
                capture.requests.append(Recorded(request.method, str(request.url), headers, body))
            return original(client, request, **kwargs)

        httpx.Client.send = send  # type: ignore[method-assign,assignment]
        try:
            yield
        finally:
            httpx.Client.send = original  # type: ignore[method-assign]


@contextlib.contextmanager
def profiled(enabled: bool) -> Iterator[list[cProfile.Profile]]:
    """cProfile the main thread (writer) and, per worker thread, `bot.evaluation.fetch`."""
    profiles: list[cProfile.Profile] = []
    if not enabled:
        yield profiles
        return
    from bot import evaluation

    original = evaluation.fetch
    local = threading.local()
    lock = threading.Lock()

    def fetch(plan: Any, source_for: Any) -> Any:
        prof = getattr(local, "prof", None)
        if prof is None:
            prof = local.prof = cProfile.Profile()
            with lock:
                profiles.append(prof)
        prof.enable()
        try:
            return original(plan, source_for)
        finally:
            prof.disable()

    main = cProfile.Profile()
    profiles.append(main)
    evaluation.fetch = fetch
    main.enable()
    try:
        yield profiles
    finally:
        main.disable()
        evaluation.fetch = original


# (depth, label, module, attribute): timed while the in-process check runs. Module-level names are
# looked up at call time by their callers, so wrapping the attribute times every call.
TIMED = (
    (0, "jobs.evaluate_all", "bot.jobs", "evaluate_all"),
    (1, "slo_of (rebuild SLO from JSON)", "bot.catalogue.stored", "slo_of"),
    (1, "evaluation.make_plan", "bot.evaluation", "make_plan"),
    (1, "jobs._store_together (one transaction per batch)", "bot.jobs", "_store_together"),
    (2, "alerts.lock_slos", "bot.store.alerts", "lock_slos"),
    (2, "evaluation.store_many", "bot.evaluation", "store_many"),
    (3, "history.replace_many", "bot.store.history", "replace_many"),
    (3, "history.roll_up_many", "bot.store.history", "roll_up_many"),
    (3, "history.trim_many", "bot.store.history", "trim_many"),
    (2, "history.window_sums_many", "bot.store.history", "window_sums_many"),
    (2, "jobs._evaluate (alerts, breaches, hooks)", "bot.jobs", "_evaluate"),
    (2, "repo.add_snapshots", "bot.store.repo", "add_snapshots"),
    (2, "Session.commit", "sqlmodel", "Session.commit"),
    (0, "evaluation.fetch (workers, summed)", "bot.evaluation", "fetch"),
    (1, "PrometheusSource._query_range", "bot.sources.prometheus", "PrometheusSource._query_range"),
    (1, "PrometheusSource._raw_samples", "bot.sources.prometheus", "PrometheusSource._raw_samples"),
    (2, "httpx.Client.post (HTTP round trip)", "httpx", "Client.post"),
)


class Timers:
    """Wall seconds and calls per wrapped function, and of those the seconds spent in the database
    driver (cursor execute, from SQLAlchemy's cursor events); cheap enough for the capture runs."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = dict.fromkeys((t[1] for t in TIMED), 0.0)
        self.driver: dict[str, float] = dict.fromkeys((t[1] for t in TIMED), 0.0)
        self.calls: dict[str, int] = dict.fromkeys((t[1] for t in TIMED), 0)
        self._lock = threading.Lock()
        self._local = threading.local()  # .stack: the timed functions this thread is inside

    def _stack(self) -> list[str]:
        stack: list[str] | None = getattr(self._local, "stack", None)
        if stack is None:
            stack = self._local.stack = []
        return stack

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        import importlib

        from sqlalchemy import Engine, event

        undo: list[tuple[Any, str, Any | None]] = []
        for _depth, label, module_name, attribute in TIMED:
            owner: Any = importlib.import_module(module_name)
            *parents, name = attribute.split(".")
            for parent in parents:
                owner = getattr(owner, parent)
            own = name in vars(owner)  # else inherited: remove our wrapper afterwards
            original = getattr(owner, name)
            setattr(owner, name, self._wrap(label, original))
            undo.append((owner, name, original if own else None))
        event.listen(Engine, "before_cursor_execute", self._before_cursor)
        event.listen(Engine, "after_cursor_execute", self._after_cursor)
        try:
            yield
        finally:
            event.remove(Engine, "before_cursor_execute", self._before_cursor)
            event.remove(Engine, "after_cursor_execute", self._after_cursor)
            for owner, name, original in reversed(undo):
                if original is None:
                    delattr(owner, name)
                else:
                    setattr(owner, name, original)

    def _before_cursor(self, *_args: Any) -> None:
        self._local.cursor_start = time.perf_counter()

    def _after_cursor(self, *_args: Any) -> None:
        elapsed = time.perf_counter() - self._local.cursor_start
        with self._lock:
            for label in set(self._stack()):
                self.driver[label] += elapsed

    def _wrap(self, label: str, function: Any) -> Any:
        def timed(*args: Any, **kwargs: Any) -> Any:
            stack = self._stack()
            stack.append(label)
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - start
                stack.pop()
                with self._lock:
                    self.seconds[label] += elapsed
                    self.calls[label] += 1

        return timed

    def print(self, title: str, wall: float) -> None:
        print(f"\n--- where the time goes: {title}, in-process run (untimed, wall {wall:.2f} s)")
        print("    seconds  in DB driver      calls  function (indented: inside the one above)")
        for depth, label, _module, _attribute in TIMED:
            if depth == 0 and label.startswith("evaluation.fetch"):
                print("    fetch workers (concurrent: sums exceed the wall time):")
            driver = f"{self.driver[label]:12.2f}" if self.driver[label] else " " * 12
            print(f"    {self.seconds[label]:7.2f}  {driver}  {self.calls[label]:9d}  {'  ' * depth}{label}")
        print(
            "    (in DB driver = cursor execute/executemany time; the rest of a row's seconds is Python:"
            " SQLAlchemy statement building/compiling, parameter and row conversion, bot/ code)"
        )


def run_cli_inprocess(argv: Sequence[str], env: dict[str, str]) -> tuple[int, str]:
    from bot import cli

    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cli.main(list(argv))
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    if code != 0:
        print(f"  in-process `slo-bot {' '.join(argv)}` exited {code}: {err.getvalue()[-1500:]}")
    return code, out.getvalue()


def print_profile(title: str, profiles: list[cProfile.Profile], wall: float, top: int) -> None:
    """The writer (main thread) by cumulative time in bot/, then own time in all code for the
    writer and for the fetch workers (summed over threads, so it can exceed the wall time)."""

    def rows(group: list[cProfile.Profile]) -> list[tuple[float, float, int, str]]:
        stats = pstats.Stats(group[0], stream=io.StringIO())
        for prof in group[1:]:
            stats.add(prof)
        raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
        return [
            (cum, tot, calls, where(filename, line, func))
            for (filename, line, func), (_cc, calls, tot, cum, _callers) in raw.items()
        ]

    def where(filename: str, line: int, func: str) -> str:
        path = Path(filename)
        if path.is_relative_to(ROOT / ".venv"):
            parts = path.parts
            return "/".join(parts[parts.index("site-packages") + 1 :]) + f":{line}({func})"
        if path.is_relative_to(ROOT):
            return f"{path.relative_to(ROOT)}:{line}({func})"
        return f"{path.name}:{line}({func})" if line else func

    main, workers = rows(profiles[:1]), rows(profiles[1:]) if len(profiles) > 1 else []
    print(f"\n--- profile: {title}, in-process under cProfile, wall {wall:.2f} s")
    print("  writer (main thread), bot/ functions by cumulative s:")
    print("    cumul s    own s      calls  function")
    for cum, tot, calls, name in sorted((r for r in main if r[3].startswith("bot/")), reverse=True)[:top]:
        print(f"    {cum:7.2f}  {tot:7.2f}  {calls:9d}  {name}")
    for label, group in (
        ("writer (main thread)", main),
        (f"{len(profiles) - 1} fetch worker(s), summed", workers),
    ):
        if not group:
            continue
        print(f"  {label}, all code by own s:")
        for cum, tot, calls, name in sorted(group, key=lambda r: -r[1])[: max(8, top // 2)]:
            print(f"    {cum:7.2f}  {tot:7.2f}  {calls:9d}  {name}")


# --- timed subprocess ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChildRun:
    code: int
    seconds: float
    cpu_s: float  # user + system of the child
    max_rss_mb: float
    stdout: str
    stderr: str


# Linux copies the RSS high-water mark of the forking process into the child's ru_maxrss at exec,
# so a child forked from this (large) process would report at least our own RSS. Children are
# therefore started by this small spawner (a fresh `python -S`, ~10 MB), which reports wait4's rusage.
SPAWNER = r"""
import json, os, signal, sys, time
spec = json.loads(sys.stdin.read())
out = os.open(spec["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
err = os.open(spec["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
null = os.open(os.devnull, os.O_RDONLY)
actions = [(os.POSIX_SPAWN_DUP2, null, 0), (os.POSIX_SPAWN_DUP2, out, 1), (os.POSIX_SPAWN_DUP2, err, 2)]
start = time.perf_counter()
pid = os.posix_spawn(spec["argv"][0], spec["argv"], spec["env"], file_actions=actions)
timed_out = []
def stop(signum, _frame):
    timed_out.append(signum == signal.SIGALRM)
    os.kill(pid, signal.SIGKILL)
signal.signal(signal.SIGTERM, stop)
signal.signal(signal.SIGALRM, stop)
signal.alarm(max(1, int(spec["timeout"])))
_, status, usage = os.wait4(pid, 0)
seconds = time.perf_counter() - start
print(json.dumps({"status": status, "seconds": seconds, "maxrss_kib": usage.ru_maxrss,
                  "cpu_s": usage.ru_utime + usage.ru_stime,
                  "timed_out": any(timed_out)}))
"""


def run_child(argv: Sequence[str], env: dict[str, str], tmp: Path, timeout: float) -> ChildRun:
    """Run a command (absolute path), output to files; wall seconds and peak RSS of exactly it."""
    out_path, err_path = tmp / "child.out", tmp / "child.err"
    spec = {
        "argv": list(argv),
        "env": env,
        "stdout": str(out_path),
        "stderr": str(err_path),
        "timeout": timeout,
    }
    spawner = subprocess.Popen(
        [sys.executable, "-S", "-c", SPAWNER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        answer, _ = spawner.communicate(json.dumps(spec), timeout=timeout + 60)
    except BaseException:
        spawner.send_signal(signal.SIGTERM)  # it kills its child, then reports
        spawner.communicate(timeout=30)
        raise
    if spawner.returncode != 0 or not answer.strip():
        raise RuntimeError(f"the spawner failed (exit {spawner.returncode}) running {argv}")
    result = json.loads(answer)
    if result["timed_out"]:
        raise TimeoutError(f"{' '.join(argv)} still running after {timeout:.0f} s: killed")
    return ChildRun(
        os.waitstatus_to_exitcode(result["status"]),
        result["seconds"],
        result["cpu_s"],
        result["maxrss_kib"] / 1024,
        out_path.read_text(errors="replace"),
        err_path.read_text(errors="replace"),
    )


def query_range_count(client: httpx.Client) -> int:
    """Prometheus's own count of answered query and query_range requests (a cross-check of the capture;
    counter selectors are read as raw samples through /api/v1/query)."""
    text = client.get("/metrics").text
    total = 0
    for line in text.splitlines():
        if line.startswith("prometheus_http_requests_total{") and (
            'handler="/api/v1/query_range"' in line or 'handler="/api/v1/query"' in line
        ):
            total += int(float(line.rsplit(" ", 1)[1]))
    return total


# --- bare baseline ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class BareRun:
    seconds: float
    cpu_s: float  # of this process (idle but for the replay)
    bytes_read: int


def bare_replay(requests: Sequence[Recorded], concurrency: int) -> BareRun:
    """Send the recorded requests with one client and `concurrency` threads, each body json.loads-ed."""
    for r in requests:
        if urlsplit(r.url).hostname not in LOOPBACK:
            raise SystemExit(f"refusing to replay a request to {r.url}: not loopback")
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    def send(client: httpx.Client, r: Recorded) -> int:
        response = client.request(r.method, r.url, content=r.body, headers=dict(r.headers))
        body = response.read()
        parsed = json.loads(body)
        if response.status_code != 200 or parsed.get("status") != "success":
            raise RuntimeError(f"bare replay got HTTP {response.status_code}: {body[:200]!r}")
        return len(body)

    start, cpu = time.perf_counter(), time.process_time()
    with httpx.Client(limits=limits, timeout=30.0) as client, ThreadPoolExecutor(concurrency) as pool:
        read = sum(pool.map(lambda r: send(client, r), requests))
    return BareRun(time.perf_counter() - start, time.process_time() - cpu, read)


@dataclass(frozen=True)
class Measured:
    check: ChildRun
    sent: int  # query_range requests Prometheus counted during the check
    bare_before: BareRun
    bare_after: BareRun
    load: tuple[float, float]  # 1-minute load average before and after

    @property
    def bare_s(self) -> float:
        return (self.bare_before.seconds + self.bare_after.seconds) / 2


# --- storage ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TableSize:
    rows_per_slo: list[int]
    rows_per_slo_day: list[float]
    slo_days: int  # the SLOs' window days, summed
    bytes: int
    how: str


def storage(url: str, window_days: dict[str, int]) -> dict[str, TableSize]:
    tables = ("bucket", "status_snapshot")
    sizes: dict[str, TableSize] = {}
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1]
        conn = sqlite3.connect(path)
        try:
            names = dict(conn.execute("SELECT id, name FROM slo"))
            try:
                conn.execute("SELECT count(*) FROM dbstat").fetchone()
                has_dbstat = True
            except sqlite3.OperationalError:
                has_dbstat = False
            for table in tables:
                counts = dict(conn.execute(f"SELECT slo_id, count(*) FROM {table} GROUP BY slo_id"))
                if has_dbstat:
                    (size,) = conn.execute(
                        "SELECT coalesce(sum(pgsize), 0) FROM dbstat WHERE name IN "
                        "(SELECT name FROM sqlite_master WHERE tbl_name = ?)",
                        (table,),
                    ).fetchone()
                    how = "SQLite dbstat: table + its indexes"
                else:
                    page = conn.execute("PRAGMA page_size").fetchone()[0]
                    pages = conn.execute("PRAGMA page_count").fetchone()[0]
                    size, how = page * pages, "whole SQLite file (no dbstat): all tables"
                sizes[table] = _table_size(counts, names, window_days, int(size), how)
        finally:
            conn.close()
        return sizes
    import psycopg

    pg_url = url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(pg_url, autocommit=True) as pg:
        names = dict(pg.execute("SELECT id, name FROM slo").fetchall())
        for table in tables:
            counts = dict(pg.execute(f"SELECT slo_id, count(*) FROM {table} GROUP BY slo_id").fetchall())
            row = pg.execute("SELECT pg_total_relation_size(%s)", (table,)).fetchone()
            size = row[0] if row else 0
            how = "pg_total_relation_size: heap + indexes + TOAST, dead rows not vacuumed"
            sizes[table] = _table_size(counts, names, window_days, int(size), how)
    return sizes


def _table_size(
    counts: dict[int, int], names: dict[int, str], window_days: dict[str, int], size: int, how: str
) -> TableSize:
    rows = [counts.get(slo_id, 0) for slo_id in names]
    per_day = [counts.get(slo_id, 0) / window_days[name] for slo_id, name in names.items()]
    slo_days = sum(window_days[name] for name in names.values())
    return TableSize(rows, per_day, slo_days, size, how)


# --- main ------------------------------------------------------------------------------------------


def states_of(output: str) -> Counter[str]:
    rows = json.loads(output)
    return Counter(r.get("state", "?") for r in rows)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--slos", type=int, default=1000, help="number of SLOs (default 1000)")
    p.add_argument(
        "--concurrency", type=int, default=16, help="SLO_BOT_CONCURRENCY, also the baseline's (default 16)"
    )
    p.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    p.add_argument(
        "--pg-admin", default=PG_ADMIN_DEFAULT, help="admin URL used to create/drop throwaway databases"
    )
    p.add_argument("--profile", action="store_true", help="cProfile the in-process runs and print the top")
    p.add_argument("--top", type=int, default=25, help="rows per profile table (default 25)")
    p.add_argument("--timeout", type=float, default=1800, help="seconds allowed per slo-bot subprocess")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.slos < 1 or args.concurrency < 1:
        raise SystemExit("--slos and --concurrency must be positive")
    require_tools()
    # Loopback only: no proxy may capture the traffic to our Prometheus.
    for var in ("NO_PROXY", "no_proxy"):
        os.environ[var] = ",".join(filter(None, [os.environ.get(var, ""), "127.0.0.1", "localhost"]))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the `finally` clean-ups
    tmp = Path(tempfile.mkdtemp(prefix="slo-bot-bench-"))
    try:
        return bench(args, tmp)
    finally:
        cleanup_servers()
        shutil.rmtree(tmp, ignore_errors=True)


_SERVERS: list[PrometheusServer] = []


def next_minute() -> None:
    """Sleep into the next minute (2 s past it): the steady-state check sees one new minute."""
    now = datetime.now(UTC)
    time.sleep(60 - now.second - now.microsecond / 1e6 + 2)


def cleanup_servers() -> None:
    while _SERVERS:
        _SERVERS.pop().stop()


def bench(args: argparse.Namespace, tmp: Path) -> int:
    t0 = time.perf_counter()
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    history = History.generate(end=now - 5 * MINUTE, days=31)
    build_tsdb(history, tmp / "data", since=history.end - 31 * DAY)
    server = PrometheusServer(tmp / "data")
    _SERVERS.append(server)
    url = server.start()
    if urlsplit(url).hostname not in LOOPBACK:
        raise SystemExit(f"Prometheus is not on loopback: {url}")
    docs, window_days = catalogue(url, args.slos)
    catalogue_path = tmp / "catalogue.yaml"
    catalogue_path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    setup_s = time.perf_counter() - t0
    print(
        f"set-up {setup_s:.1f} s: Prometheus {url} on {(history.end - history.start) / DAY:.0f}"
        f" days of per-minute history; {args.slos} SLOs, 1 DataSource, database {args.database}, "
        f"concurrency {args.concurrency}, {os.cpu_count()} CPU(s)"
    )
    print("first check now (backfill), steady-state check in the next minute")

    with databases(args.database, tmp, args.pg_admin) as (capture_url, measured_url):
        base_env = {"SLO_BOT_CONCURRENCY": str(args.concurrency)}

        # 1. In-process capture (untimed): the exact requests each check sends.
        capture_env = {**base_env, "DATABASE_URL": capture_url}
        code, _ = run_cli_inprocess(["apply", str(catalogue_path)], capture_env)
        if code != 0:
            return 1
        captured: dict[str, list[Recorded]] = {}
        for label in ("first", "steady"):
            if label == "steady":
                next_minute()
            capture, timers = Capture(), Timers()
            with capture.active(), timers.active(), profiled(args.profile) as profiles:
                start = time.perf_counter()
                code, _ = run_cli_inprocess(["check", "--json"], capture_env)
                wall = time.perf_counter() - start
            if code != 0:
                return 1
            captured[label] = capture.requests
            timers.print(f"{label} check", wall)
            if args.profile:
                print_profile(f"{label} check", profiles, wall, args.top)

        # 2. The measured subprocesses.
        env = {**os.environ, **base_env, "DATABASE_URL": measured_url}
        env.pop("SLO_BOT_CONFIG", None)
        slo_bot = str(VENV_BIN / "slo-bot")
        apply = run_child([slo_bot, "apply", str(catalogue_path)], env, tmp, args.timeout)
        if apply.code != 0:
            print(f"slo-bot apply failed ({apply.code}):\n{apply.stderr[-3000:]}")
            return 1
        floor = run_child(["/bin/true"], env, tmp, 60)  # what the spawner itself adds to ru_maxrss
        imports = run_child(
            [sys.executable, "-c", "import bot.cli"], env, tmp, args.timeout
        )  # the fixed start-up cost inside every check
        results: dict[str, Measured] = {}
        with httpx.Client(base_url=url, timeout=10.0) as prom:
            for label in ("first", "steady"):
                # bare runs on both sides of the check: the machine's load drifts
                load_before = os.getloadavg()[0]
                bare_before = bare_replay(captured[label], args.concurrency)
                if label == "steady":
                    next_minute()
                before = query_range_count(prom)
                run = run_child([slo_bot, "check", "--json"], env, tmp, args.timeout)
                sent = query_range_count(prom) - before
                bare_after = bare_replay(captured[label], args.concurrency)
                load = (load_before, os.getloadavg()[0])
                if run.code != 0:
                    print(f"slo-bot check ({label}) exited {run.code}:\n{run.stderr[-3000:]}")
                    return 1
                states = states_of(run.stdout)
                print(
                    f"{label:6s} check: {sum(states.values())} SLOs evaluated, states "
                    + ", ".join(f"{k} {v}" for k, v in sorted(states.items()))
                )
                results[label] = Measured(run, sent, bare_before, bare_after, load)
        sizes = storage(measured_url, window_days)

    report(args, apply, imports, floor, captured, results, sizes, time.perf_counter() - t0)
    return 0


def report(
    args: argparse.Namespace,
    apply: ChildRun,
    imports: ChildRun,
    floor: ChildRun,
    captured: dict[str, list[Recorded]],
    results: dict[str, Measured],
    sizes: dict[str, TableSize],
    total_s: float,
) -> None:
    print(
        f"\n`slo-bot apply` of {args.slos} SLOs: {apply.seconds:.2f} s, peak RSS {apply.max_rss_mb:.0f} MB; "
        f"`python -c 'import bot.cli'` alone: {imports.seconds:.2f} s, {imports.max_rss_mb:.0f} MB "
        "(start-up included in every check below)"
    )
    print(
        f"peak RSS is wait4's ru_maxrss of the child; its floor here (/bin/true) is {floor.max_rss_mb:.0f} MB"
    )
    print(
        "\n                      queries  distinct  MB read   check s  bare s (before/after)   ratio"
        "  peak RSS MB  check CPU s  bare CPU s"
    )
    summary: list[tuple[str, str, bool]] = []
    for label in ("first", "steady"):
        m = results[label]
        requests = captured[label]
        distinct = len({r.body for r in requests})
        ratio = m.check.seconds / m.bare_s
        name = "first (30d backfill)" if label == "first" else "steady (+1 minute)"
        bare = f"{m.bare_s:6.2f} ({m.bare_before.seconds:.2f}/{m.bare_after.seconds:.2f})"
        print(
            f"  {name:20s} {len(requests):7d}  {distinct:8d}  {m.bare_before.bytes_read / 1e6:7.1f}"
            f"  {m.check.seconds:8.2f}  {bare:21s}  {ratio:5.2f}x  {m.check.max_rss_mb:11.0f}"
            f"  {m.check.cpu_s:11.2f}  {(m.bare_before.cpu_s + m.bare_after.cpu_s) / 2:10.2f}"
        )
        if m.sent != len(requests):
            print(
                f"    note: Prometheus counted {m.sent} query/query_range requests during the timed check, "
                f"the capture run sent {len(requests)}"
            )
        summary.append(
            (f"{label} check time <= {RATIO_TARGET}x bare", f"{ratio:.2f}x", ratio <= RATIO_TARGET)
        )
        summary.append(
            (
                f"{label} check peak RSS < {RSS_TARGET_MB:.0f} MB",
                f"{m.check.max_rss_mb:.0f} MB",
                m.check.max_rss_mb < RSS_TARGET_MB,
            )
        )
    loads = [x for m in results.values() for x in m.load]
    print(
        f"  bare = the same recorded requests, one httpx.Client, {args.concurrency} threads, body read + "
        "json.loads, once before and once after the check (mean used). Prometheus has no query-result "
        "cache, so SLOs that share series cost it as much as distinct series would. The check, "
        f"Prometheus and anything else running share {os.cpu_count()} CPU(s): 1-min load average "
        f"{min(loads):.1f}-{max(loads):.1f} during the timed runs."
    )

    print(f"\nstorage at steady state ({args.database}; windows 30d/28d):")
    print("  table              rows/SLO (min-max)    bytes/SLO  rows/SLO/day  bytes/SLO/day  bytes/row")
    for table, size in sizes.items():
        rows = statistics.mean(size.rows_per_slo)
        per_slo = size.bytes / len(size.rows_per_slo)
        per_day = statistics.mean(size.rows_per_slo_day)
        per_row = size.bytes / max(1, sum(size.rows_per_slo))
        print(
            f"  {table:16s} {rows:8.1f} ({min(size.rows_per_slo)}-{max(size.rows_per_slo)})"
            f"  {per_slo:13,.0f}  {per_day:12.2f}  {size.bytes / size.slo_days:13,.0f}  {per_row:9.1f}"
        )
    for table, size in sizes.items():
        print(f"  {table}: {size.bytes:,} bytes, {size.how}")
    snap = sizes["status_snapshot"]
    snap_row = snap.bytes / max(1, sum(snap.rows_per_slo))
    kept = 6 * 60 + 1
    print(
        f"  status_snapshot keeps 6 h: at one check a minute that is {kept} rows/SLO, "
        f"~{kept * snap_row:,.0f} bytes/SLO at the measured {snap_row:.0f} bytes/row"
    )

    print(
        f"\nsummary ({args.slos} SLOs, {args.database}, concurrency {args.concurrency}; "
        f"{total_s:.0f} s in all)"
    )
    for what, value, ok in summary:
        print(f"  {'PASS' if ok else 'MISS'}  {what:34s} {value}")


if __name__ == "__main__":
    sys.exit(main())
