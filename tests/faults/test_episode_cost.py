"""What an alert episode cost is one measurement: `slo-bot replay` and the live path (the scheduler's
evaluation every 5 minutes, run in process at past instants) give the same number for the same episode."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot import jobs
from bot.sources.pool import SourcePool
from bot.store import db
from tests.faults import budgetdata
from tests.promharness import MINUTE, tools_problem

STEP = 5 * MINUTE


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    problem = tools_problem()
    if problem:  # fail, not skip: CI installs prometheus, so a missing one must be seen
        pytest.fail(problem, pytrace=False)
    with budgetdata.serve([budgetdata.outage()], tmp_path_factory.mktemp("outage")) as url:
        yield url


def _slo_bot(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "SLO_BOT_CONFIG": "", **env}
    return subprocess.run(
        [sys.executable, "-m", "bot", *argv], env=full, capture_output=True, text=True, timeout=120
    )


def _time(text: str) -> datetime:
    """JSON's `...Z` and SQLite's naive UTC alike."""
    at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def test_replay_and_the_live_path_measure_the_same_episode_cost(prometheus: str, tmp_path: Path) -> None:
    """10 minutes at 10 % errors on a 1-day 99.9 % SLO: the page fires 5 minutes in and clears when its
    30m window is clean, the ticket fires then and clears when its 2h window is; the one breach (from 5
    minutes before the page) ends one evaluation later and holds all 1,000 failed requests, 69.4 % of
    the 1,440 the day's 1.44 million requests allow."""
    path = tmp_path / "slos.yaml"
    path.write_text(budgetdata.catalogue(budgetdata.outage(), prometheus))
    database = tmp_path / "slo-bot.db"
    env = {"DATABASE_URL": f"sqlite:///{database}"}
    applied = _slo_bot(["apply", str(path)], env)
    assert applied.returncode == 0, applied.stderr
    start = budgetdata.OUTAGE_START - STEP
    ticket_cleared = budgetdata.OUTAGE_END + 6 * 60 * MINUTE
    end = ticket_cleared + STEP
    at = start
    engine = db.make_engine(env["DATABASE_URL"])
    sources = SourcePool(max_connections=4)
    try:
        while at <= end:  # `check --at` is read-only: the ticks run in process
            (outcome,) = jobs.evaluate_all(engine, now=at, sources=sources, concurrency=4)
            assert outcome.error is None, outcome.error
            at += STEP
    finally:
        sources.close()
        engine.dispose()
    with sqlite3.connect(database) as connection:
        signals = connection.execute(
            "SELECT key, fired_at, resolved_at, breach_id FROM alert WHERE key IN ('page', 'ticket')"
            " ORDER BY fired_at"
        ).fetchall()
        live = connection.execute(
            "SELECT id, kind, peak, opened_at, resolved_at, spent_ratio FROM breach"
        ).fetchall()
    assert len(live) == 1, live
    number, kind, peak, opened, resolved, live_cost = live[0]
    assert (kind, peak) == ("burn", "page")
    assert [(k, _time(f), _time(r), b) for k, f, r, b in signals] == [
        ("page", budgetdata.OUTAGE_START + STEP, budgetdata.OUTAGE_END + 30 * MINUTE, number),
        ("ticket", budgetdata.OUTAGE_END + 30 * MINUTE, ticket_cleared, number),
    ]
    assert _time(opened) == budgetdata.OUTAGE_START + STEP
    assert _time(resolved) == end  # one evaluation after its last signal cleared

    argv = ["replay", "--from", start.isoformat(), "--to", end.isoformat(), "--step", "5m", "--json"]
    replayed = _slo_bot(argv, env)
    assert replayed.returncode == 0, replayed.stderr
    lines = [json.loads(line) for line in replayed.stdout.splitlines()]
    burn = [x for x in lines if x["severity"] in ("page", "ticket")]
    assert [(_time(x["at"]), x["severity"], x["event"], x["breach"]) for x in burn] == [
        (budgetdata.OUTAGE_START + STEP, "page", "firing", 1),
        (budgetdata.OUTAGE_END + 30 * MINUTE, "page", "resolved", 1),
        (budgetdata.OUTAGE_END + 30 * MINUTE, "ticket", "firing", 1),
        (ticket_cleared, "ticket", "resolved", 1),
    ]
    # the breach's cost, on the line of its last signal's resolution
    assert burn[-1]["budget_spent"] == pytest.approx(live_cost, abs=1e-6)  # printed to 6 digits
    assert live_cost == pytest.approx(1000 / 1440, rel=1e-9)
    # the breach table on stderr says the same
    row = next(line for line in replayed.stderr.splitlines() if line.split()[:3] == ["outage", "#1", "page"])
    assert row.endswith("69.4%"), row


def test_a_breach_that_runs_into_a_maintenance_window_costs_only_what_counts(
    prometheus: str, tmp_path: Path
) -> None:
    """The same outage with a maintenance window over its second half: the page still fires from the
    first half, and the breach costs the 500 failed requests outside the window, of a budget that
    leaves out the window's events too, live and in replay alike (it was charged all 1,000)."""
    window_start = budgetdata.OUTAGE_START + STEP  # the last 5 of the outage's 10 minutes
    adjustment = f"""
---
apiVersion: slo-bot/v1
kind: BudgetAdjustment
metadata: {{name: deploy}}
spec:
  firstEventStart: {window_start.isoformat().replace("+00:00", "Z")}
  duration: 5m
  filters:
    slos: [{{name: outage}}]
"""
    path = tmp_path / "slos.yaml"
    path.write_text(budgetdata.catalogue(budgetdata.outage(), prometheus) + adjustment)
    database = tmp_path / "slo-bot.db"
    env = {"DATABASE_URL": f"sqlite:///{database}"}
    applied = _slo_bot(["apply", str(path)], env)
    assert applied.returncode == 0, applied.stderr
    start = budgetdata.OUTAGE_START - STEP
    end = budgetdata.OUTAGE_END + 6 * 60 * MINUTE + STEP
    engine = db.make_engine(env["DATABASE_URL"])
    sources = SourcePool(max_connections=4)
    at = start
    try:
        while at <= end:
            (outcome,) = jobs.evaluate_all(engine, now=at, sources=sources, concurrency=4)
            assert outcome.error is None, outcome.error
            at += STEP
    finally:
        sources.close()
        engine.dispose()
    with sqlite3.connect(database) as connection:
        live = connection.execute("SELECT kind, peak, resolved_at, spent_ratio FROM breach").fetchall()
    assert len(live) == 1, live
    kind, peak, resolved, live_cost = live[0]
    assert (kind, peak) == ("burn", "page") and resolved is not None
    # 500 failed of the 0.1 % the day's 1.44 million requests, less the window's 5,000, allow
    assert live_cost == pytest.approx(500 / 1435, rel=1e-3)
    argv = ["replay", "--from", start.isoformat(), "--to", end.isoformat(), "--step", "5m", "--json"]
    replayed = _slo_bot(argv, env)
    assert replayed.returncode == 0, replayed.stderr
    lines = [json.loads(line) for line in replayed.stdout.splitlines()]
    costs = [x["budget_spent"] for x in lines if x.get("budget_spent") is not None]
    assert costs and costs[-1] == pytest.approx(live_cost, abs=1e-5)
