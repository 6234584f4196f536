"""Fault: `/healthz` said "ok" while nothing was being evaluated, and console mode had no `/healthz`.

It checked only that the database answered `SELECT 1` and that the scheduler object ran: a tick hung
on a source that never answers, or a database that takes no writes, still got 200, and console mode
(no Slack token) served no HTTP at all, so the Docker HEALTHCHECK failed there whatever happened.
Now `/healthz` answers JSON: 503 with its reasons when no evaluation completed for 3 intervals or the
database cannot be written, 200 otherwise with the count of failing SLOs; console mode serves it.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from sqlalchemy import create_engine

from bot import health
from bot.health import Heartbeat
from bot.store import db
from tests.dbharness import PG_ADMIN
from tests.fakeslack import FakeSlack
from tests.promtext import sample
from tests.slack.harness import BotProcess, catalogue, free_port, wait_for

ROOT = Path(__file__).resolve().parents[2]
INTERVAL_S = 2  # SLO_BOT_EVAL_INTERVAL of every bot here: 3 intervals are 6 s

# A healthy simulated SLO, and one whose Prometheus is at `port` with a timeout far past 3 intervals.
CATALOGUE = """
apiVersion: openslo/v1
kind: DataSource
metadata: {{name: sim}}
spec:
  type: Simulated
  connectionDetails: {{seed: 3, requests_per_minute: 600, error_ratio: 0.0001}}
---
apiVersion: openslo/v1
kind: DataSource
metadata: {{name: prom}}
spec:
  type: Prometheus
  connectionDetails: {{url: "http://127.0.0.1:{port}", timeout: 120s}}
---
apiVersion: openslo/v1
kind: SLO
metadata: {{name: calm-api}}
spec:
  service: api
  indicator:
    metadata: {{name: calm-requests}}
    spec:
      ratioMetric:
        counter: true
        good: {{metricSource: {{metricSourceRef: sim, spec: {{query: good}}}}}}
        total: {{metricSource: {{metricSourceRef: sim, spec: {{query: total}}}}}}
  timeWindow: [{{duration: 1d, isRolling: true}}]
  budgetingMethod: Occurrences
  objectives: [{{target: 0.99}}]
---
apiVersion: openslo/v1
kind: SLO
metadata: {{name: remote-api}}
spec:
  service: api
  indicator:
    metadata: {{name: remote-requests}}
    spec:
      ratioMetric:
        counter: true
        good: {{metricSource: {{metricSourceRef: prom, spec: {{query: 'requests_total{{code="200"}}'}}}}}}
        total: {{metricSource: {{metricSourceRef: prom, spec: {{query: 'requests_total'}}}}}}
  timeWindow: [{{duration: 1d, isRolling: true}}]
  budgetingMethod: Occurrences
  objectives: [{{target: 0.99}}]
"""


class SilentServer:
    """A TCP server that accepts every connection and never answers: a source that hangs."""

    def __init__(self, port: int) -> None:
        self.listener = socket.create_server(("127.0.0.1", port))
        self.listener.settimeout(0.1)
        self.accepted: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            self.accepted.append(conn)

    def close(self) -> None:
        """Stop listening and drop every connection: the hung requests fail at once."""
        self._stop.set()
        self._thread.join(timeout=5)
        self.listener.close()
        for conn in self.accepted:
            conn.close()


class ConsoleBot:
    """`slo-bot run` with no Slack token (console mode), serving HTTP on its own port."""

    def __init__(self, tmp_path: Path, database_url: str, source_port: int) -> None:
        (tmp_path / "slos.yaml").write_text(CATALOGUE.format(port=source_port))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = tmp_path / "run.log"
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "SLO_BOT_CONFIG": str(tmp_path / "slos.yaml"),
            "SLO_BOT_EVAL_INTERVAL": f"{INTERVAL_S}s",
            "SLO_BOT_HOST": "127.0.0.1",
            "PYTHONUNBUFFERED": "1",
        }
        for unset in (
            "SLACK_BOT_TOKEN",
            "SLACK_APP_TOKEN",
            "PAGERDUTY_WEBHOOK_SECRET",
            "OPSGENIE_WEBHOOK_TOKEN",
        ):
            env.pop(unset, None)
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bot", "run", "--port", str(self.port)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def health(self) -> httpx.Response | None:
        if self.process.poll() is not None:
            raise AssertionError(f"slo-bot run exited with {self.process.returncode}:\n{self.log()}")
        try:
            return httpx.get(self.url + "/healthz", timeout=10)
        except httpx.TransportError:
            return None

    def wait_health(self, status: int, what: str, timeout: float = 40) -> dict[str, Any]:
        answers: list[httpx.Response] = []

        def answered() -> bool:
            response = self.health()
            if response is not None:
                answers.append(response)
            return response is not None and response.status_code == status

        try:
            wait_for(answered, timeout, what)
        except AssertionError as err:
            last = answers[-1].text if answers else "no answer"
            raise AssertionError(f"{err}; last /healthz: {last}\n{self.log()}") from None
        body: dict[str, Any] = answers[-1].json()
        return body

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int:
        self.process.terminate()
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError("slo-bot run did not stop on SIGTERM") from None


def _completed_with_one_failing(body: dict[str, Any]) -> bool:
    return body.get("last_evaluation_completed_at") is not None and body.get("slos_failing") == 1


def test_console_mode_serves_healthz_and_metrics_counting_failing_slos(
    tmp_path: Path, database_url: str
) -> None:
    bot = ConsoleBot(tmp_path, database_url, source_port=free_port())  # nothing listens: refused
    try:
        bot.wait_health(200, "/healthz in console mode")

        def counted() -> bool:
            response = bot.health()
            return response is not None and _completed_with_one_failing(response.json())

        wait_for(counted, 40, "a completed evaluation with remote-api failing")
        response = bot.health()
        assert response is not None and response.status_code == 200
        assert response.headers["content-type"].startswith("application/json")
        body = response.json()
        assert body["status"] == "ok" and body["reasons"] == []
        assert body["slos"] == 2 and body["slos_failing"] == 1
        assert body["slos_failing_by_kind"] == {"source_unavailable": 1}
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", body["last_evaluation_completed_at"])

        metrics = httpx.get(bot.url + "/metrics", timeout=10).text
        assert sample(metrics, "slo_bot_slos_failing", kind="source_unavailable") == 1, metrics
        assert sample(metrics, "slo_bot_slos_failing", kind="bad_query") == 0, metrics
        assert 1.7e9 < (sample(metrics, "slo_bot_last_evaluation_completed_timestamp_seconds") or 0) < 1e10
        assert (sample(metrics, "slo_bot_evaluation_failures_total", kind="source_unavailable") or 0) >= 1
        assert "# TYPE slo_bot_slos_failing gauge" in metrics
    finally:
        code = bot.stop()
    assert code == 0, bot.log()
    text = bot.log()
    assert f"/healthz and /metrics on 127.0.0.1:{bot.port}" in text, text


def test_a_hung_evaluation_turns_healthz_503_and_says_why(tmp_path: Path) -> None:
    source_port = free_port()
    bot = ConsoleBot(tmp_path, f"sqlite:///{tmp_path / 'bot.db'}", source_port)
    silent: SilentServer | None = None
    try:
        wait_for(
            lambda: (r := bot.health()) is not None and _completed_with_one_failing(r.json()),
            40,
            "a completed evaluation",
        )
        silent = SilentServer(source_port)  # from now on the next tick hangs on remote-api
        body = bot.wait_health(503, "503 from /healthz while the tick hangs", timeout=30)
        assert body["status"] == "unhealthy"
        assert any("no evaluation has completed for" in reason for reason in body["reasons"]), body
        assert body["evaluation_running_since"] is not None
        silent.close()  # the hung queries fail at once; the next tick completes
        silent = None
        body = bot.wait_health(200, "200 again once evaluations complete", timeout=30)
        assert body["status"] == "ok" and body["reasons"] == []
    finally:
        if silent is not None:
            silent.close()
        bot.stop()


def test_a_first_evaluation_that_makes_no_progress_is_unhealthy(tmp_path: Path) -> None:
    source_port = free_port()
    silent = SilentServer(source_port)
    bot = ConsoleBot(tmp_path, f"sqlite:///{tmp_path / 'bot.db'}", source_port)
    try:
        body = bot.wait_health(200, "/healthz while the first evaluation starts", timeout=30)
        assert body["status"] == "starting" and body["last_evaluation_completed_at"] is None
        body = bot.wait_health(503, "503 once the first evaluation stalls past 3 intervals", timeout=30)
        assert body["status"] == "unhealthy"
        assert any("first evaluation has not completed" in reason for reason in body["reasons"]), body
    finally:
        silent.close()  # first: a stop waits for the running tick
        bot.stop()


def test_the_docker_healthcheck_passes_in_console_mode(tmp_path: Path) -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    match = re.search(r"^HEALTHCHECK .*? CMD (.+)$", dockerfile, re.M)
    assert match is not None
    assert "3000" in match.group(1) and 'CMD ["run", "--port", "3000"]' in dockerfile
    bot = ConsoleBot(tmp_path, f"sqlite:///{tmp_path / 'bot.db'}", free_port())
    try:
        bot.wait_health(200, "/healthz in console mode")
        command = match.group(1).replace("3000", str(bot.port)).replace("python -c", f"{sys.executable} -c")
        assert subprocess.run(command, shell=True, timeout=30).returncode == 0
    finally:
        bot.stop()


@pytest.fixture
def own_postgres() -> Iterator[str]:
    """A database of this test's own, so that making it read-only harms no other test."""
    name = f"slobot_readonly_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = f"{PG_ADMIN.rsplit('/', 1)[0]}/{name}"
    engine = db.make_engine(url)
    db.upgrade(engine)
    engine.dispose()
    yield url
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _read_only(database: str, on: bool) -> None:
    """Make every new session of `database` read-only (as a failover to a replica would), and end the
    current ones so the bot's pool reconnects into the new setting."""
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        setting = "SET default_transaction_read_only = on" if on else "RESET default_transaction_read_only"
        admin.execute(f'ALTER DATABASE "{database}" {setting}')
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            (database,),
        )


def test_a_database_that_cannot_be_written_turns_healthz_503(
    tmp_path: Path, slack: FakeSlack, own_postgres: str
) -> None:
    name = own_postgres.rsplit("/", 1)[1]
    with BotProcess(tmp_path, own_postgres, slack, catalogue()) as bot:  # HTTP mode
        wait_for(lambda: bot.http.get("/healthz").json()["last_evaluation_completed_at"], 30, "a tick")
        assert bot.http.get("/healthz").status_code == 200
        _read_only(name, True)
        wait_for(lambda: bot.http.get("/healthz").status_code == 503, 20, "503 from /healthz")
        body = bot.http.get("/healthz").json()
        assert body["status"] == "unhealthy"
        assert any(r.startswith("database cannot be written") for r in body["reasons"]), body
        assert any("read-only transaction" in r for r in body["reasons"]), body
        _read_only(name, False)
        wait_for(lambda: bot.http.get("/healthz").status_code == 200, 30, "200 once writable again")
        assert bot.http.get("/healthz").json()["reasons"] == []


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_backfill_that_keeps_evaluating_slos_is_starting_not_unhealthy() -> None:
    clock = Clock()
    beat = Heartbeat(monotonic=clock)
    interval = timedelta(minutes=1)
    beat.began()
    for _ in range(10):  # an SLO's backfill every 100 s: 10 intervals in all, never 3 without progress
        clock.now += 100
        beat()
        assert beat.assess(interval)[:2] == ("starting", [])
    assert beat.assess(interval)[2]["first_evaluation"] == {"slos_evaluated": 10}
    clock.now += 181  # then no SLO for more than 3 intervals
    status, reasons, _ = beat.assess(interval)
    assert status == "unhealthy" and "has evaluated no SLO for 181 s" in reasons[0], reasons
    beat.ended()
    assert beat.assess(interval)[:2] == ("ok", [])


def test_a_later_tick_is_judged_by_completion_alone() -> None:
    clock = Clock()
    beat = Heartbeat(monotonic=clock)
    interval = timedelta(minutes=1)
    beat.began()
    beat.ended()
    beat.began()
    for _ in range(4):  # progressing, but no evaluation completes for 4 intervals
        clock.now += 60
        beat()
    status, reasons, _ = beat.assess(interval)
    assert status == "unhealthy" and reasons == [
        "no evaluation has completed for 240 s (more than 3 evaluation intervals, 180 s)"
    ]
    beat.ended(failure="OperationalError: the database is gone")
    assert beat.assess(interval)[1][0] == "the last evaluation failed: OperationalError: the database is gone"


def test_the_write_probe_refuses_a_read_only_sqlite_database(tmp_path: Path) -> None:
    path = tmp_path / "bot.db"
    engine = db.make_engine(f"sqlite:///{path}")
    db.upgrade(engine)
    engine.dispose()
    read_only = create_engine(f"sqlite:///file:{path}?mode=ro&uri=true")
    try:
        status, body = health.check(read_only, Heartbeat(), timedelta(minutes=1), scheduler_running=True)
    finally:
        read_only.dispose()
    assert status == 503, body
    assert body["reasons"] == [
        "database cannot be written: OperationalError: attempt to write a readonly database"
    ]
    assert body["status"] == "unhealthy"
