"""Normal operation prints no warnings: a slow first tick (the backfill) is said once, in slo-bot's words."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, select

from bot.scheduler import start_scheduler
from bot.store import db
from bot.store.models import SnapshotRecord
from tests.fakeslack import FakeSlack
from tests.slack.harness import BotProcess

ROOT = Path(__file__).resolve().parents[2]


def _run_ticks(durations: list[float], interval: timedelta) -> None:
    """Ticks taking `durations` seconds each, on the real scheduler, until all have run."""
    done = threading.Event()
    remaining = list(durations)

    def tick() -> None:
        time.sleep(remaining.pop(0))
        if not remaining:
            done.set()

    scheduler = start_scheduler(tick, interval, align=False)
    try:
        assert done.wait(timeout=30), "the ticks never ran"
    finally:
        scheduler.shutdown(wait=True)


def test_a_slow_first_tick_is_said_once_and_apscheduler_stays_quiet(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    _run_ticks([1.0, 0.0, 0.0], timedelta(seconds=0.2))

    loud = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert loud == [], [f"{r.name}: {r.getMessage()}" for r in loud]
    ours = [r for r in caplog.records if r.name == "bot.scheduler"]
    assert len(ours) == 1 and ours[0].levelno == logging.INFO, [r.getMessage() for r in ours]
    assert "first evaluation" in ours[0].getMessage() and "backfill" in ours[0].getMessage()


def test_a_later_tick_that_overruns_its_interval_is_a_warning_of_our_own(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    _run_ticks([0.0, 1.0, 0.0], timedelta(seconds=0.2))

    loud = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.name for r in loud] == ["bot.scheduler"], [f"{r.name}: {r.getMessage()}" for r in loud]
    assert "longer than its interval" in loud[0].getMessage()


def test_demo_prints_no_warning(tmp_path: Path) -> None:
    unset = ("DATABASE_URL", "SLO_BOT_CONFIG", "SLACK_BOT_TOKEN")
    env = {k: v for k, v in os.environ.items() if k not in unset}
    env["SLO_BOT_CHART_DIR"] = str(tmp_path)  # its charts, not in the checkout
    result = subprocess.run(
        [sys.executable, "-m", "bot", "demo"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "demo finished" in result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    # at most our one line about a slow first evaluation; no warning, no APScheduler line
    assert all(line.startswith("INFO bot.scheduler: the first evaluation") for line in lines), lines
    assert "WARNING" not in result.stdout + result.stderr


def _evaluations(database_url: str) -> int:
    engine = db.make_engine(database_url)
    try:
        with Session(engine) as session:
            return len(session.exec(select(SnapshotRecord)).all())
    finally:
        engine.dispose()


def test_run_in_slack_http_mode_starts_and_evaluates_without_a_warning(
    tmp_path: Path, database_url: str
) -> None:
    catalogue = (ROOT / "examples" / "checkout.yaml").read_text()
    with FakeSlack() as fake:
        bot = BotProcess(tmp_path, database_url, fake, catalogue)
        with bot:
            deadline = time.monotonic() + 60
            while _evaluations(database_url) < 6:  # two ticks of the three SLOs, the backfill done
                assert time.monotonic() < deadline, bot.log()
                time.sleep(0.2)
        log = bot.log()
    assert "slo-bot running in HTTP mode" in log
    assert [line for line in log.splitlines() if line.startswith(("WARNING", "ERROR"))] == [], log
