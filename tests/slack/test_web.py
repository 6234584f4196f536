"""`GET /healthz` and `GET /metrics` of `slo-bot run` in HTTP mode, as a monitoring system reads them."""

from __future__ import annotations

import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from bot.store import db
from tests.dbharness import PG_ADMIN
from tests.fakeslack import FakeSlack
from tests.promtext import sample
from tests.slack.conftest import BotFactory
from tests.slack.harness import BotProcess, catalogue, wait_for

SAMPLE = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="[^"]*",?)*\})? -?[0-9.e+-]+$')


def test_healthz_and_metrics_while_running(start_bot: BotFactory, slack: FakeSlack) -> None:
    bot = start_bot(catalogue())
    health = bot.http.get("/healthz")
    assert health.status_code == 200 and health.json()["status"] in ("ok", "starting")
    slack.wait_calls("chat.postMessage", 1)
    slack.wait_calls("files.completeUploadExternal", 1)  # and the breach's chart in its thread
    assert bot.command("status").status_code == 200
    wait_for(lambda: bot.http.get("/healthz").json()["evaluations_completed"] >= 1, 10, "a tick")

    response = bot.http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = response.text
    for line in text.splitlines():
        assert line.startswith("# HELP ") or line.startswith("# TYPE ") or SAMPLE.match(line), line
    assert "# TYPE slo_bot_evaluations_total counter" in text
    assert re.search(r'^slo_bot_evaluations_total\{outcome="ok"\} [1-9]', text, re.M)
    assert "# TYPE slo_bot_slack_request_seconds histogram" in text
    assert re.search(r'^slo_bot_slack_request_seconds_bucket\{le="\+Inf"\} [1-9]', text, re.M)
    assert re.search(r"^slo_bot_slack_request_seconds_count [1-9]", text, re.M)
    assert re.search(r"^slo_bot_evaluation_seconds_sum [0-9.]+", text, re.M)
    assert sample(text, "slo_bot_outbox_pending", destination="slack") == 0
    assert sample(text, "slo_bot_outbox_oldest_pending_age_seconds", destination="slack") == 0
    assert (sample(text, "process_resident_memory_bytes") or 0) > 0
    if shutil.which("promtool"):  # Prometheus' own parser and linter agree
        checked = subprocess.run(
            ["promtool", "check", "metrics"], input=text, capture_output=True, text=True, timeout=30
        )
        assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.fixture
def own_postgres() -> Iterator[str]:
    """A database of this test's own, so that dropping it under the bot harms no other test."""
    name = f"slobot_health_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = f"{PG_ADMIN.rsplit('/', 1)[0]}/{name}"
    engine = db.make_engine(url)
    db.upgrade(engine)
    engine.dispose()
    yield url
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_healthz_says_503_when_the_database_is_gone(
    tmp_path: Path, slack: FakeSlack, own_postgres: str
) -> None:
    with BotProcess(tmp_path, own_postgres, slack, catalogue()) as bot:
        assert bot.http.get("/healthz").status_code == 200
        name = own_postgres.rsplit("/", 1)[1]
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        wait_for(lambda: bot.http.get("/healthz").status_code == 503, 15, "503 from /healthz")
        reasons = bot.http.get("/healthz").json()["reasons"]
        assert any(reason.startswith("database unreachable") for reason in reasons), reasons
        assert bot.http.get("/metrics").status_code == 200  # still says what it knows
