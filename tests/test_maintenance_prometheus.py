"""Maintenance windows against a real Prometheus holding a history with known true counts.

A window over the past incident (45 minutes of 20 % errors): no breach opens and no budget is spent,
and every figure is the truth without the window's events; the same incident outside any window
opens a page breach and spends its budget. Both the live evaluation (stored, breaches) and
`check --at` (read-only) are asked.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from bot import jobs
from bot.sources.pool import SourcePool
from bot.store import breaches as breach_store
from bot.store import db, repo
from tests.promharness import DAY, MINUTE, History
from tests.test_cli_prometheus import Cli, catalogue, run  # noqa: F401  (fixtures)

WINDOW = """
---
apiVersion: slo-bot/v1
kind: BudgetAdjustment
metadata: {{name: night-maintenance}}
spec:
  description: Database upgrade
  firstEventStart: {start}
  duration: {duration}
  filters:
    slos: [{{name: api-availability}}]
"""
TARGET = 0.999


def _iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def _with_window(catalogue: Path, start: datetime, length: timedelta) -> Path:  # noqa: F811
    minutes = int(length / MINUTE)
    catalogue.write_text(catalogue.read_text() + WINDOW.format(start=_iso(start), duration=f"{minutes}m"))
    return catalogue


def _evaluate(url: str, at: datetime) -> jobs.Outcome:
    engine: Engine = db.make_engine(url)
    sources = SourcePool(max_connections=4)
    try:
        outcomes = jobs.evaluate_all(
            engine, now=at, sources=sources, concurrency=4, names=["api-availability"]
        )
    finally:
        sources.close()
        engine.dispose()
    (outcome,) = outcomes
    assert outcome.error is None, outcome.error
    return outcome


def _open_breaches(url: str) -> list[str]:
    engine = db.make_engine(url)
    try:
        with Session(engine) as session:
            record = repo.get_slo(session=session, name="api-availability")
            assert record is not None and record.id is not None
            return [b.kind for b in breach_store.open_breaches(session=session, slo_id=record.id)]
    finally:
        engine.dispose()


def _truth(history: History, at: datetime, window: tuple[datetime, datetime] | None) -> tuple[int, int]:
    """(good, total) of the 30-day window at `at`, without the maintenance window's minutes."""
    start = at - 30 * DAY
    good, total = history.good(start, at), history.total(start, at)
    if window is not None:
        a, b = max(window[0], start), min(window[1], at)
        good -= history.good(a, b)
        total -= history.total(a, b)
    return good, total


def _assert_figures(row: dict[str, Any], good: int, total: int) -> None:
    assert row["total"] == pytest.approx(total, rel=0.01)
    assert row["good"] == pytest.approx(good, rel=0.01)
    consumed = (1 - good / total) / (1 - TARGET)
    assert row["budget"]["consumed"] == pytest.approx(consumed, rel=0.01)


def test_a_window_over_the_incident_opens_no_breach_and_spends_no_budget(
    run: Cli,  # noqa: F811
    catalogue: Path,  # noqa: F811
    prometheus: str,
    prom_history: History,
) -> None:
    first, last = prom_history.past_incident
    at = first + 30 * MINUTE  # 30 minutes into 20 % errors: a page without a window
    window = (first - 15 * MINUTE, last + 15 * MINUTE)
    _with_window(catalogue, window[0], window[1] - window[0])
    code, _, err = run("apply", str(catalogue), prometheus=prometheus)
    assert code == 0, err
    assert "1 maintenance window(s) stored" in err
    row = run.check(at, prometheus)["api-availability"]
    assert row["alerts"] == []
    good, total = _truth(prom_history, at, window)
    _assert_figures(row, good, total)
    # every burn window lies inside the maintenance window: no data there, not a burn
    assert row["burn_rates"]["5m"] is None and row["burn_rates"]["30m"] is None
    # the live evaluation stores and alerts: no breach, the same figures
    outcome = _evaluate(run.database_url, at)
    assert outcome.alerts == [] and outcome.changes == ()
    assert outcome.status is not None
    assert outcome.status.total == pytest.approx(total, rel=0.01)
    assert outcome.status.good == pytest.approx(good, rel=0.01)
    assert _open_breaches(run.database_url) == []
    # the 99.5 % SLO has no window: it sees the incident's events
    other = run.check(at, prometheus)["api-errors-28d"]
    start = at - 28 * DAY
    assert other["total"] == pytest.approx(prom_history.total(start, at), rel=0.01)


def test_the_same_incident_outside_a_window_breaches_and_spends(
    run: Cli,  # noqa: F811
    catalogue: Path,  # noqa: F811
    prometheus: str,
    prom_history: History,
) -> None:
    first, _ = prom_history.past_incident
    at = first + 30 * MINUTE
    window = (first - 3 * 60 * MINUTE, first - 60 * MINUTE)  # the same night, before the incident
    _with_window(catalogue, window[0], window[1] - window[0])
    assert run("apply", str(catalogue), prometheus=prometheus)[0] == 0
    row = run.check(at, prometheus)["api-availability"]
    assert "page" in [a["severity"] for a in row["alerts"]]
    good, total = _truth(prom_history, at, window)
    _assert_figures(row, good, total)
    spent_in_window = _truth(prom_history, at, None)
    assert spent_in_window[1] > total  # the window's events left out, and only those
    outcome = _evaluate(run.database_url, at)
    assert "page" in [a["severity"] for a in outcome.alerts]
    assert _open_breaches(run.database_url) == ["burn"]
    assert outcome.status is not None
    assert outcome.status.total == pytest.approx(total, rel=0.01)
