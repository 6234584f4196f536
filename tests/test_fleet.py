"""A fleet: three `slo-bot run` processes on one PostgreSQL, a real Prometheus scraping a live
service behind a counting proxy, and the fake Slack Web API.

What an operator would check: the replicas together ask the source what one would; each SLO is
evaluated once per tick; each breach is posted once; `kill -9` of the busiest replica and SIGTERM
during a tick lose no SLO; `slo-bot check` beside the fleet exits cleanly. And on SQLite, a second
`slo-bot run` is turned away with a message that says why.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from bot.store import db
from tests.countingproxy import CountingProxy
from tests.dbharness import PG_ADMIN
from tests.fakeslack import FakeSlack
from tests.faults import catalogues as faults
from tests.faults.livetarget import LiveService, scraping_prometheus
from tests.promharness import tools_problem

SLOS = 8
INTERVAL_S = 4
CHANNEL = "C0FLEET"
GOOD, TOTAL = 'http_requests_total{job="api",code="200"}', 'http_requests_total{job="api"}'


@pytest.fixture
def fleet_database() -> Iterator[str]:
    name = f"slobot_fleet_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = f"{PG_ADMIN.rsplit('/', 1)[0]}/{name}"
    engine = db.make_engine(url)
    db.upgrade(engine)  # the replicas would do it; the test reads the tables before they have
    engine.dispose()
    yield url
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def live(tmp_path: Path) -> Iterator[tuple[LiveService, CountingProxy]]:
    problem = tools_problem()
    if problem:
        pytest.fail(problem)
    service = LiveService(born=time.time() - 3 * 3600)
    target = service.serve()
    data = service.backfill(tmp_path / "data", until=time.time() - 60)
    prometheus = scraping_prometheus(data, target, 15)
    prometheus.start()
    proxy = CountingProxy(prometheus.url)
    try:
        yield service, proxy
    finally:
        proxy.close()
        prometheus.stop()
        service.stop()


class Fleet:
    def __init__(self, tmp: Path, database: str, source_url: str, slack: FakeSlack) -> None:
        self.tmp = tmp
        self.database = database
        documents = [faults.datasource("prom", source_url)]
        documents += [faults.ratio_slo(f"fleet-{i:02d}", "prom", GOOD, TOTAL) for i in range(SLOS)]
        (tmp / "slos.yaml").write_text(faults.catalogue(*documents))
        self.env = {
            **os.environ,
            "DATABASE_URL": database,
            "SLO_BOT_CONFIG": str(tmp / "slos.yaml"),
            "SLO_BOT_EVAL_INTERVAL": f"{INTERVAL_S}s",
            "SLO_BOT_CONCURRENCY": "2",
            "SLO_BOT_DEFAULT_CHANNEL": CHANNEL,
            "SLACK_BOT_TOKEN": slack.token,
            "SLACK_SIGNING_SECRET": "fleet-signing-secret",
            "SLACK_API_URL": slack.api_url,
        }
        for name in ("SLACK_APP_TOKEN", "PAGERDUTY_WEBHOOK_SECRET", "OPSGENIE_WEBHOOK_TOKEN"):
            self.env.pop(name, None)
        self.replicas: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str) -> None:
        with (self.tmp / f"{name}.log").open("wb") as log:
            self.replicas[name] = subprocess.Popen(
                [sys.executable, "-m", "bot", "run", "--port", "0"],
                env={**self.env, "SLO_BOT_REPLICA": name},
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def log(self, name: str) -> str:
        return (self.tmp / f"{name}.log").read_text()

    def stop_all(self) -> None:
        for process in self.replicas.values():
            if process.poll() is None:
                process.kill()
            process.wait()

    def sql(self, query: str, *args: object) -> list[tuple[object, ...]]:
        with psycopg.connect(self.database.replace("postgresql+psycopg", "postgresql")) as connection:
            return list(connection.execute(query, args).fetchall())

    def evaluations_since(self, since: float) -> dict[tuple[str, int], int]:
        """(SLO, tick) -> how many evaluations, for evaluations at or after unix time `since`."""
        rows = self.sql(
            "SELECT s.name, floor(extract(epoch FROM n.evaluated_at) / %s)::bigint, count(*) "
            "FROM status_snapshot n JOIN slo s ON s.id = n.slo_id "
            "WHERE n.evaluated_at >= to_timestamp(%s) GROUP BY 1, 2",
            INTERVAL_S,
            since,
        )
        return {(str(name), int(tick)): int(count) for name, tick, count in rows}  # type: ignore[call-overload]

    def last_evaluated(self) -> dict[str, float]:
        rows = self.sql(
            "SELECT s.name, extract(epoch FROM max(n.evaluated_at)) FROM slo s "
            "JOIN status_snapshot n ON n.slo_id = s.id GROUP BY 1"
        )
        return {str(name): float(at) for name, at in rows}  # type: ignore[arg-type]

    def holders(self) -> dict[str, int]:
        """SLOs each replica took in the newest tick."""
        rows = self.sql(
            "SELECT holder, count(*) FROM slo_lease WHERE tick = (SELECT max(tick) FROM slo_lease) "
            "GROUP BY holder"
        )
        return {str(holder): int(count) for holder, count in rows}  # type: ignore[call-overload]


def _wait(predicate, timeout: float, what) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what() if callable(what) else what}")


def _next_tick() -> float:
    """Unix time of the next tick boundary (replicas evaluate at each)."""
    return (time.time() // INTERVAL_S + 1) * INTERVAL_S


def _queries_per_tick(proxy: CountingProxy, ticks: int) -> float:
    start = _next_tick() + 1
    time.sleep(start - time.time())
    before = proxy.count
    time.sleep(ticks * INTERVAL_S)
    return (proxy.count - before) / ticks


def _top_level(slack: FakeSlack) -> list[dict]:
    return [m for m in slack.messages(CHANNEL) if m.get("thread_ts", m["ts"]) == m["ts"]]


def test_three_replicas_share_the_slos_post_once_and_lose_nothing_when_one_dies(
    tmp_path: Path, fleet_database: str, live: tuple[LiveService, CountingProxy]
) -> None:
    service, proxy = live
    with FakeSlack() as slack:
        slack.add_channel(CHANNEL, "fleet-alerts")
        fleet = Fleet(tmp_path, fleet_database, proxy.url, slack)
        try:
            # each query takes a while, as on a busy Prometheus: a tick is long enough to share
            proxy.delay_s = 0.1
            fleet.start("a")
            _wait(lambda: len(fleet.last_evaluated()) == SLOS, 120, "the first replica's first tick")
            alone = _queries_per_tick(proxy, 3)
            assert alone > 0

            # two more replicas: the source is asked what one replica asked, not three times that
            fleet.start("b")
            fleet.start("c")
            _wait(lambda: {"a", "b", "c"} <= set(fleet.holders()), 60, "every replica taking SLOs")
            shared_from = _next_tick()
            together = _queries_per_tick(proxy, 4)
            assert together <= 1.5 * alone + 2, (alone, together)
            evaluations = fleet.evaluations_since(shared_from)
            assert evaluations and max(evaluations.values()) == 1, "an SLO was evaluated twice in a tick"
            complete_ticks = {tick for _, tick in evaluations} - {max(t for _, t in evaluations)}
            for tick in complete_ticks:
                assert sum(1 for _, t in evaluations if t == tick) == SLOS, (tick, evaluations)

            # an outage: one page per SLO, posted once however many replicas deliver the outbox
            service.outage_from = time.time()
            _wait(
                lambda: len(_top_level(slack)) >= SLOS,
                180,
                lambda: (
                    "a page per SLO: breaches "
                    f"{fleet.sql('SELECT kind, state, count(*) FROM breach GROUP BY 1, 2')}"
                    f", outbox {fleet.sql('SELECT kind, status, count(*) FROM outbox GROUP BY 1, 2')}"
                    f", Slack calls {[c.method for c in slack.calls]}"
                ),
            )
            # an operator's `slo-bot check` beside the fleet: exits cleanly, posts nothing more
            check = subprocess.run(
                [sys.executable, "-m", "bot", "check"],
                env={**fleet.env, "SLO_BOT_REPLICA": "operator"},
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert check.returncode == 0, check.stderr
            assert "Traceback" not in check.stderr and "fleet-07" in check.stdout
            time.sleep(3 * INTERVAL_S)
            posts = _top_level(slack)
            assert len(posts) == SLOS, [m.get("text") for m in posts]
            for i in range(SLOS):
                assert sum(f"fleet-{i:02d}" in (m.get("text") or "") for m in posts) == 1

            # kill -9 of the busiest replica: every SLO is evaluated again within two intervals
            busiest = max(fleet.holders().items(), key=lambda item: item[1])[0]
            fleet.replicas[busiest].send_signal(signal.SIGKILL)
            fleet.replicas[busiest].wait()
            killed_at = time.time()
            _wait(
                lambda: min(fleet.last_evaluated().values()) > killed_at,
                2 * INTERVAL_S + 2,
                "every SLO evaluated after the kill",
            )

            # SIGTERM in the middle of a tick: the tick still evaluates every SLO, once
            proxy.delay_s = 0.3  # a slow source: ticks take a while
            leaving = next(name for name in fleet.replicas if name != busiest)
            time.sleep(_next_tick() - time.time())
            _wait(
                lambda: bool(
                    fleet.sql(
                        "SELECT 1 FROM slo_lease WHERE holder = %s AND done_at IS NULL "
                        "AND tick >= to_timestamp(%s)",
                        leaving,
                        time.time() // INTERVAL_S * INTERVAL_S,
                    )
                ),
                INTERVAL_S,
                f"{leaving} holding SLOs of a tick",
            )
            tick = int(time.time() // INTERVAL_S)
            fleet.replicas[leaving].send_signal(signal.SIGTERM)
            assert fleet.replicas[leaving].wait(timeout=60) == 0, fleet.log(leaving)[-2000:]
            time.sleep(max(0.0, (tick + 1) * INTERVAL_S - time.time()) + 1)
            in_tick = {
                name: n for (name, t), n in fleet.evaluations_since(tick * INTERVAL_S).items() if t == tick
            }
            assert in_tick == {f"fleet-{i:02d}": 1 for i in range(SLOS)}, in_tick
            for name in fleet.replicas:
                assert "Traceback" not in fleet.log(name), fleet.log(name)[-3000:]
        finally:
            fleet.stop_all()


def _console_on_sqlite(tmp_path: Path) -> dict[str, str]:
    """The environment of a console-mode `slo-bot run` on a SQLite file in `tmp_path`."""
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'bot.db'}", "SLO_BOT_EVAL_INTERVAL": "1m"}
    for name in ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "SLO_BOT_CONFIG", "SLO_BOT_LOG_FORMAT"):
        env.pop(name, None)
    return env


def test_a_second_run_on_one_sqlite_database_is_turned_away(tmp_path: Path) -> None:
    env = _console_on_sqlite(tmp_path)
    command = [sys.executable, "-m", "bot", "run", "--port", "0"]
    first_log, restarted_log = tmp_path / "first.log", tmp_path / "restarted.log"
    with first_log.open("wb") as log:
        first = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait(lambda: "slo-bot running" in first_log.read_text(), 60, "the first run to start")
        second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        assert second.returncode == 1, second.stderr
        assert "another `slo-bot run`" in second.stderr and "PostgreSQL" in second.stderr
        assert "Traceback" not in second.stderr
    finally:
        first.send_signal(signal.SIGKILL)  # no clean shutdown: the kernel drops its lock
        first.wait()
    with restarted_log.open("wb") as log:
        restarted = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait(lambda: "slo-bot running" in restarted_log.read_text(), 60, "the restarted run to start")
        assert restarted.poll() is None, restarted_log.read_text()
    finally:
        restarted.terminate()
        assert restarted.wait(timeout=30) == 0


def test_a_run_stopped_as_soon_as_it_says_it_runs_exits_cleanly(tmp_path: Path) -> None:
    """SIGTERM right after "slo-bot running" (a deploy that changes its mind): before the web server
    had its own signal handlers, such a signal was swallowed and the process ran on until killed."""
    env = _console_on_sqlite(tmp_path)
    for attempt in range(5):
        log_path = tmp_path / f"run-{attempt}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "bot", "run", "--port", "0"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            deadline = time.monotonic() + 60
            while "slo-bot running" not in log_path.read_text() and time.monotonic() < deadline:
                time.sleep(0.005)
            process.terminate()
            assert process.wait(timeout=30) == 0, log_path.read_text()
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
